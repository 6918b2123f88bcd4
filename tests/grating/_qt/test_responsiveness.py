"""The grating dock never freezes the window: Find on the grating sample (bound:
``tests/freeze.py``)."""

from tests.freeze import freeze_bound, idle, longest_freeze, settle


def test_find_never_freezes_the_window(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    viewer.open_sample("napari-emcal", "grating_image")
    _, widget = viewer.window.add_plugin_dock_widget("napari-emcal", "Grating pixel size")
    widget.set_layer(viewer.layers[0])
    settle(qtbot, lambda: idle(widget))
    bound = freeze_bound(viewer)
    gap = longest_freeze(widget.run, widget)
    assert widget.result is not None and widget.result.found
    assert gap < bound, f"the window froze {gap * 1000:.0f} ms (bound {bound * 1000:.0f} ms)"
