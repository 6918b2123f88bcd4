"""The SerialEM dock never freezes the window: Measure on the image-shift series (bound:
``tests/freeze.py``)."""

from tests.freeze import freeze_bound, idle, longest_freeze, settle


def test_measure_never_freezes_the_window(make_napari_viewer, qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_EMCAL_HISTORY", str(tmp_path / "history.sqlite"))
    viewer = make_napari_viewer(show=True)
    viewer.open_sample("napari-emcal", "serialem_series")
    _, widget = viewer.window.add_plugin_dock_widget("napari-emcal", "SerialEM calibrations")
    settle(qtbot, lambda: idle(widget))
    bound = freeze_bound(viewer)
    gap = longest_freeze(widget.run, widget)
    assert widget.result is not None
    assert gap < bound, f"the window froze {gap * 1000:.0f} ms (bound {bound * 1000:.0f} ms)"
