"""The "Grating pixel size" widget with a real viewer."""

import numpy as np
import pytest

from napari_emcal.grating import lattice_image
from napari_emcal.grating._qt.widget import SERIALEM_PIXEL

pytestmark = pytest.mark.gui


def _wait(qtbot, widget, timeout=30000):
    qtbot.waitUntil(lambda: widget._worker is None, timeout=timeout)


@pytest.fixture
def grating(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-emcal", "grating_image")
    layer = viewer.layers[0]
    _, widget = viewer.window.add_plugin_dock_widget("napari-emcal", "Grating pixel size")
    widget.set_layer(layer)
    return viewer, layer, widget


def test_run_shows_autocorrelation_peaks_and_result(grating, qtbot):
    viewer, layer, widget = grating
    truth = layer.metadata["emcal"]["ground_truth"]
    assert widget.magnification.value == 3600  # read from the layer's metadata
    assert widget.run()
    _wait(qtbot, widget)
    result = widget.result
    assert result.found
    assert result.pixel_size_nm == pytest.approx(truth["pixel_size_nm"], rel=2e-3)
    assert abs(result.angle_deg - truth["angle_deg"]) < 0.2
    assert "nm/px" in widget.result_label.value
    acf = viewer.layers[f"{layer.name} · autocorrelation"]
    peaks = viewer.layers[f"{layer.name} · lattice peaks"]
    # the autocorrelation sits beside the image; the peaks' data coordinates are lags in
    # image pixels, placed on its zero lag
    centre = acf.data_to_world(result.origin)
    assert np.allclose(centre[-2:], acf.metadata["emcal_lag"]["zero"])
    assert np.allclose(peaks.data_to_world(np.zeros(2))[-2:], centre[-2:])
    start_pixel = np.rint(result.autocorrelation_pixel(result.start_peak)).astype(int)
    assert acf.data[tuple(start_pixel)] > 0.3
    assert np.allclose(peaks.data[0], result.start_peak)
    # running again updates the layers in place
    count = len(viewer.layers)
    widget.run()
    _wait(qtbot, widget)
    assert len(viewer.layers) == count and viewer.layers[acf.name] is acf


def test_apply_sets_the_layer_scale_in_nm(grating, qtbot):
    viewer, layer, widget = grating
    widget.run()
    _wait(qtbot, widget)
    widget.apply_to_layer()
    assert layer.scale[-1] == pytest.approx(widget.result.pixel_size_nm)
    assert str(layer.units[-1]) in ("nm", "nanometer")


def test_marker_retry_uses_the_clicked_peak(grating, qtbot):
    viewer, layer, widget = grating
    widget.run()
    _wait(qtbot, widget)
    first = widget.result
    a, b = first.lattice_vectors
    diagonal = a + b + np.array([2.0, -3.0])  # a click near the (1, 1) peak
    widget.set_marker(layer, diagonal)
    assert widget.marker_button.enabled
    assert widget.run(use_marker=True)
    _wait(qtbot, widget)
    retried = widget.result
    assert retried.found
    assert np.hypot(*np.subtract(retried.start_peak, a + b)) < 3
    assert retried.pixel_size_nm == pytest.approx(first.pixel_size_nm / np.sqrt(2), rel=2e-3)


def test_no_lattice_is_reported_and_nothing_lost(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    layer = viewer.add_image(
        np.random.default_rng(0).poisson(30, (512, 512)).astype(float), name="noise"
    )
    _, widget = viewer.window.add_plugin_dock_widget("napari-emcal", "Grating pixel size")
    widget.set_layer(layer)
    widget.table.add_row(pixel_size_nm=1.0, magnification=10000)
    widget.run()
    _wait(qtbot, widget)
    assert not widget.result.found
    assert widget.result_label.value == "no lattice found"
    assert "no lattice found" in widget.status.value
    assert not widget.apply_button.enabled and not widget.add_button.enabled
    assert len(widget.table) == 1
    assert list(layer.scale) == [1.0, 1.0]


def test_table_add_highlight_export_import(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-emcal", "Grating pixel size")
    # three magnifications of one camera (pixel size x magnification = 12 µm), one typo
    for magnification, period in ((5000, 40.0), (10000, 80.0), (20000, 16.0)):
        layer = viewer.add_image(
            lattice_image((512, 512), spacing_px=period, angle_deg=3.0, dose=50, seed=1),
            name=f"{magnification}x",
        )
        widget.set_layer(layer)
        widget.magnification.value = magnification
        widget.run()
        _wait(qtbot, widget)
        widget.add_to_table()
    frame = widget.table.frame
    assert frame["magnification"].tolist() == [5000, 10000, 20000]
    assert frame["product_outlier"].tolist() == [False, False, True]
    # the drift plot shows the history at the image's magnification
    widget.history.shown.value = True
    times, values, errors = widget.history.points()
    assert values == [pytest.approx(frame["pixel_size_nm"].iloc[2])] and errors[0] > 0
    widget.magnification.value = 0  # unknown: every magnification
    assert len(widget.history.points()[0]) == 3
    shown = widget.session.view.widget.native
    assert shown.rowCount() == 3 and shown.columnCount() == len(frame.columns)
    from napari_emcal._qt.tables import header

    assert widget.session.view.widget.column_headers == tuple(header(c) for c in frame.columns)
    column = list(frame.columns).index("magnification")
    assert [float(shown.item(row, column).text()) for row in range(3)] == [5000, 10000, 20000]
    highlighted = shown.item(2, 0).background().color().name()
    assert highlighted != shown.item(0, 0).background().color().name()
    path = tmp_path / "table.csv"
    widget.session.export_csv(path)
    widget.session.view.widget.native.selectRow(0)
    widget.session.remove_selected()
    assert len(widget.table) == 2
    widget.session.import_csv(path)
    assert len(widget.table) == 3 and widget.session.view.widget.native.rowCount() == 3
    bad = tmp_path / "bad.csv"
    bad.write_text("pixel_size_nm,wavelength\n1,2\n")
    widget.session.import_csv(bad)
    assert "wavelength" in widget.status.value and len(widget.table) == 3

    # SerialEM needs its mag index: refused without, typed into the table, then written
    widget.session.save_for(SERIALEM_PIXEL, tmp_path / "props.txt")
    assert "mag index" in widget.status.value and not (tmp_path / "props.txt").exists()
    column = list(widget.table.frame.columns).index("mag_index")
    for row, index in ((0, "17"), (1, "18")):
        shown.item(row, column).setText(index)
    widget.session.save_for(SERIALEM_PIXEL, tmp_path / "props.txt")
    lines = (tmp_path / "props.txt").read_text().splitlines()
    assert [line.split()[:2] for line in lines] == [
        ["RotationAndPixel", "17"],
        ["RotationAndPixel", "18"],
    ]
    assert "left out" in widget.status.value  # the 20000x row has no index


def test_menu_action_docks_and_runs(make_napari_viewer, qtbot):
    from napari_emcal._napari.contributions import find_pixel_size_grating

    viewer = make_napari_viewer()
    viewer.open_sample("napari-emcal", "grating_image")
    widget = find_pixel_size_grating(viewer)
    _wait(qtbot, widget)
    assert widget.result is not None and widget.result.found


def test_magnification_is_never_carried_to_an_image_without_one(grating, qtbot):
    viewer, layer, widget = grating
    assert widget.magnification.value == 3600
    assert not widget.magnification.label.startswith("⚠")
    bare = viewer.add_image(np.zeros((64, 64)), name="no metadata")
    widget.set_layer(bare)
    assert widget.magnification.value == 0  # unknown, not the grating's 3600
    assert widget.magnification.label.startswith("⚠")


def test_a_failed_retry_keeps_the_good_result(grating, qtbot):
    viewer, layer, widget = grating
    widget.run()
    _wait(qtbot, widget)
    good = widget.result
    assert good.found
    widget.set_marker(layer, np.array([3.0, 1.0]))  # the flank of the central peak
    assert widget.run(use_marker=True)
    _wait(qtbot, widget)
    assert widget.result is good and "previous result is kept" in widget.status.value
    assert "±" in widget.result_label.value and "anisotropy" in widget.result_label.value


def test_rectangular_mode_asks_for_the_second_spacing(grating):
    viewer, layer, widget = grating
    assert widget.spacing2.native.isHidden()
    widget.mode.value = "rectangular"
    assert not widget.spacing2.native.isHidden()


def test_added_result_is_kept_in_the_history_with_the_previous_value(make_napari_viewer, qtbot):
    from napari_emcal.history import History

    viewer = make_napari_viewer()
    viewer.open_sample("napari-emcal", "grating_image")
    _, widget = viewer.window.add_plugin_dock_widget("napari-emcal", "Grating pixel size")
    widget.layer.value = viewer.layers[0]
    for _ in range(2):
        assert widget.run()
        qtbot.waitUntil(lambda: widget._worker is None, timeout=30000)
        widget.add_to_table()
    entries = History().entries("pixel_size")
    assert len(entries) == 2 and entries[0].setting == "magnification=3600"
    assert "previous" in widget.status.value and "pixel_size_nm 4.13" in widget.status.value
