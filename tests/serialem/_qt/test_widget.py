"""The "SerialEM calibrations" dock with a real viewer and the sample series."""

import numpy as np
import pytest

from napari_emcal.history import History
from napari_emcal.serialem import simulate as sim

pytestmark = pytest.mark.gui


def _wait(qtbot, widget, timeout=60000):
    qtbot.waitUntil(lambda: not widget.task.running, timeout=timeout)


@pytest.fixture
def dock(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-emcal", "serialem_series")
    _, widget = viewer.window.add_plugin_dock_widget("napari-emcal", "SerialEM calibrations")
    return viewer, widget


def test_sample_image_shift_measure_save_accept(dock, qtbot, tmp_path):
    viewer, widget = dock
    layer = viewer.layers[0]
    assert widget.layer.value is layer
    assert len(widget.records.value["data"]) == 9
    assert widget.run()
    _wait(qtbot, widget)
    kind, fit, lines, _ = widget.result
    truth = np.asarray(layer.metadata["emcal"]["ground_truth"]["matrix"])
    assert np.abs(fit.matrix - truth).max() < 0.003 * np.linalg.norm(truth)
    assert lines[0] == "ImageShiftMatrix 1"
    # the records list the measured and predicted positions and residuals
    rows = widget.records.value["data"]
    assert rows[1][-1] != "" and float(rows[1][-1]) < 0.5
    assert "px per IS unit" in widget.result_label.value
    written = widget.save(tmp_path / "is.txt")
    assert written.read_text().splitlines() == lines
    assert "first at this setting" in widget.accept()
    assert len(History().entries("image_shift")) == 1
    # a second, different calibration at the same setting drifts
    widget.result[3][0]["dcol_dx"] += 5.0
    widget.accept_button.enabled = True
    assert "DRIFT" in widget.accept()


def test_refusal_is_shown(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-emcal", "SerialEM calibrations")
    assert not widget.run()  # no series yet
    series = sim.simulate_series(sim.rotation_matrix(150.0, 0.0), step=0.0, shape=(64, 64))
    path = sim.write_series(series, tmp_path / "still.mrc")
    assert widget.open(path)
    assert widget.run()
    _wait(qtbot, widget)
    assert "never changes" in widget.status.value
    assert widget.result is None


def test_high_defocus_image_shift_from_two_series(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-emcal", "SerialEM calibrations")
    focus = sim.rotation_matrix(220.0, -20.0)
    a = np.radians(5.0)
    ratio = 1.1 * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    paths = [
        sim.write_series(
            sim.simulate_series(m, seed=40 + k, defocus_um=-150.0 * k, shape=(192, 192)),
            tmp_path / f"{k}.mrc",
        )
        for k, m in enumerate((focus, ratio @ focus))
    ]
    assert widget.open(paths[0]) and widget.open(paths[1])
    near, far = viewer.layers
    widget.layer.value = near
    widget.calibration.value = "High-defocus image shift"
    widget.defocused.value = far
    assert widget.run()
    _wait(qtbot, widget)
    kind, result, lines, _ = widget.result
    assert kind == "high_defocus_is"
    assert abs(result.scale - 1.1) < 0.002 and abs(result.rotation_deg - 5.0) < 0.1
    assert lines[0].startswith("HighFocusISCal 7 1 -150.000000")
    assert "rotation" in widget.result_label.value


def test_high_defocus_image_shift_goes_into_the_high_defocus_table(
    make_napari_viewer, qtbot, tmp_path
):
    """Through the napari glue: *Add to high-defocus table* puts the result into the
    High-defocus mag dock's table as an image-shift row, with its setting and source."""
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-emcal", "SerialEM calibrations")
    focus = sim.rotation_matrix(220.0, -20.0)
    a = np.radians(-4.0)
    ratio = 1.08 * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    paths = [
        sim.write_series(
            sim.simulate_series(m, seed=60 + k, defocus_um=-120.0 * k, shape=(192, 192)),
            tmp_path / f"{k}.mrc",
        )
        for k, m in enumerate((focus, ratio @ focus))
    ]
    assert widget.open(paths[0]) and widget.open(paths[1])
    near, far = viewer.layers
    widget.layer.value = near
    widget.calibration.value = "High-defocus image shift"
    assert widget.to_high_defocus_table is not None  # set by the glue (_napari.docks)
    assert not widget.table_button.native.isHidden() and not widget.table_button.enabled
    widget.defocused.value = far
    assert widget.run()
    _wait(qtbot, widget)
    assert widget.table_button.enabled
    message = widget.add_to_high_defocus_table()
    assert "image-shift calibration at -120 µm added as row 1" in message
    assert widget.status.value == message and not widget.table_button.enabled
    _, high_defocus = viewer.window.add_plugin_dock_widget("napari-emcal", "High-defocus mag")
    (row,) = high_defocus.table.frame.itertuples()
    assert row.calibration == "image shift" and row.defocus_um == -120.0
    assert abs(row.scale - 1.08) < 0.002 and abs(row.rotation_deg + 4.0) < 0.1
    assert (row.spot, row.probe) == (7, "micro")
    assert row.near_image == str(paths[0]) and row.far_image == str(paths[1])
    assert row.source.startswith("SerialEM high-defocus image shift: 1.mrc")
    # the table view shows it
    assert high_defocus.session.view.cell_text(0, "calibration") == "image shift"
