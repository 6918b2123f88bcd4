"""The dataset check never freezes the window: Run check on the overfocus sample, its
seven layers added one per turn of the event loop (bound: ``tests/freeze.py``)."""

from tests.freeze import freeze_bound, idle, longest_freeze, settle


def test_run_check_never_freezes_the_window(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    viewer.open_sample("napari-emcal", "overfocus_grating")
    _, widget = viewer.window.add_plugin_dock_widget("napari-emcal", "4D dataset check")
    widget.set_layer(viewer.layers[0])
    settle(qtbot, lambda: idle(widget))
    bound = freeze_bound(viewer)
    gap = longest_freeze(widget.run, widget)
    assert widget.report is not None and widget.find_output(" · CoM y") is not None
    assert gap < bound, f"the window froze {gap * 1000:.0f} ms (bound {bound * 1000:.0f} ms)"
