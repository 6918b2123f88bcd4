"""The camera-length dock never freezes the window: Calibrate on the Au ring pattern
(bound: ``tests/freeze.py``)."""

from tests.freeze import freeze_bound, idle, longest_freeze, settle


def test_calibrate_never_freezes_the_window(make_napari_viewer, qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_EMCAL_HISTORY", str(tmp_path / "history.sqlite"))
    viewer = make_napari_viewer(show=True)
    viewer.open_sample("napari-emcal", "au_ring_pattern")
    _, widget = viewer.window.add_plugin_dock_widget("napari-emcal", "Camera length (rings)")
    widget.set_layer(viewer.layers[0])
    settle(qtbot, lambda: idle(widget))
    bound = freeze_bound(viewer)
    gap = longest_freeze(widget.run, widget)
    assert widget.result is not None
    assert gap < bound, f"the window froze {gap * 1000:.0f} ms (bound {bound * 1000:.0f} ms)"
