"""The high-defocus dock never freezes the window: Measure on the sample pair (bound:
``tests/freeze.py``)."""

import numpy as np

from tests.freeze import freeze_bound, idle, longest_freeze, settle


def test_measure_never_freezes_the_window(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    viewer.open_sample("napari-emcal", "high_defocus_pair")
    _, widget = viewer.window.add_plugin_dock_widget("napari-emcal", "High-defocus mag")
    truth = viewer.layers[1].metadata["emcal"]
    near, far = np.array(truth["landmarks_near"]), np.array(truth["landmarks_far"])
    inside = np.flatnonzero(((far > 40) & (far < 984)).all(axis=1))[:2]
    for which, ends in (("near", near[inside]), ("far", far[inside])):
        widget.start_line(which)
        widget.line_layer(which).add_lines(ends)
    settle(qtbot, lambda: idle(widget))
    bound = freeze_bound(viewer)
    gap = longest_freeze(widget.run, widget)
    assert widget.result is not None
    assert gap < bound, f"the window froze {gap * 1000:.0f} ms (bound {bound * 1000:.0f} ms)"
