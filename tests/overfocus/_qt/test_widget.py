import json

import numpy as np
import pytest
from qtpy.QtCore import Qt

from napari_emcal.overfocus import TwinParams, compute
from napari_emcal.overfocus.sharpness import blur
from napari_emcal.overfocus.twin import load_uncertainty

pytestmark = pytest.mark.gui


def _wait(qtbot, widget, timeout=20000):
    """Wait until no worker runs and no update is queued."""
    qtbot.waitUntil(
        lambda: widget.updates.idle and not widget.task.running,
        timeout=timeout,
    )


@pytest.fixture
def sample(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)  # shown (on Xvfb when headless) so screenshots render
    viewer.open_sample("napari-emcal", "overfocus_grating")
    layer = viewer.layers[0]
    _, widget = viewer.window.add_plugin_dock_widget("napari-emcal", "Overfocus calibration")
    widget.set_layer(layer)
    widget.preview.enabled_box.value = False
    _wait(qtbot, widget)
    return viewer, layer, widget


def test_sample_opens_lazily_described(sample):
    viewer, layer, widget = sample
    assert layer.data.shape == (48, 48, 64, 64)
    md = layer.metadata["emcal"]
    assert md["ground_truth"]["parameters"]["scan_rotation"]["value"] == 83.0
    assert widget.twin.scan_step.value == pytest.approx(1.0)  # prefilled from metadata (nm)


def test_layers_created_once_and_updated_in_place(sample, qtbot):
    viewer, layer, widget = sample
    names = [
        f"{layer.name} · {n}" for n in ("point", "selected", "shifted_sum", "sum", "aperture_sum")
    ]
    assert all(n in viewer.layers for n in names)
    shifted = viewer.layers[names[2]]
    assert shifted.data.shape == (48, 48)
    assert viewer.layers[names[4]].data.shape == (64, 64)
    before = shifted.data.copy()
    widget.twin.scan_rotation.value = 40.0
    widget.twin.flip_y.value = True
    _wait(qtbot, widget)
    assert len(viewer.layers) == 6  # nothing duplicated
    assert viewer.layers[names[2]] is shifted
    assert not np.allclose(shifted.data, before)
    expected = compute(layer.data, widget.params(), outputs=["shifted_sum"])["shifted_sum"]
    np.testing.assert_allclose(shifted.data, expected)


def test_true_parameters_are_sharper(sample, qtbot):
    viewer, layer, widget = sample
    wrong_blur = float(widget.sharpness.value)
    truth = TwinParams.from_json_dict(layer.metadata["emcal"]["ground_truth"])
    widget.set_params(truth)
    _wait(qtbot, widget)
    assert float(widget.sharpness.value) < wrong_blur - 0.05
    assert widget.params().scan_rotation == pytest.approx(83.0)
    assert float(widget.sharpness.value) == pytest.approx(
        blur(compute(layer.data, truth)["shifted_sum"], truth, (64, 64)), abs=1e-4
    )


def test_preview_is_marked_and_fast_path_consistent(sample, qtbot):
    viewer, layer, widget = sample
    widget.preview.detector_bin.value = 2
    widget.preview.enabled_box.value = True
    _wait(qtbot, widget)
    assert "preview" in widget.status.value
    assert widget.output_layer("aperture_sum").data.shape == (32, 32)
    widget.run_full()
    _wait(qtbot, widget)
    assert widget.status.value == "full resolution"
    assert widget.output_layer("aperture_sum").data.shape == (64, 64)
    assert not widget.progress.visible  # idle: no bar, never "100 %"


def test_clicks_choose_frame_and_point(sample, qtbot):
    viewer, layer, widget = sample
    widget.outputs.select_frame((5, 7))
    widget.outputs.select_point((40, 30))
    _wait(qtbot, widget)
    expected = compute(
        layer.data, widget.params(), select=(5, 7), point=(40, 30), outputs=["point", "selected"]
    )
    np.testing.assert_allclose(widget.output_layer("point").data, expected["point"])
    np.testing.assert_allclose(widget.output_layer("selected").data, expected["selected"])


def test_bad_input_gives_message_and_widget_keeps_working(sample, qtbot):
    viewer, layer, widget = sample
    widget.twin.camera_length.value = 0.0
    qtbot.wait(300)
    assert "camera_length must be positive" in widget.status.value
    widget.twin.camera_length.value = 150.0
    _wait(qtbot, widget)
    assert "⚠" not in widget.status.value
    image2d = viewer.add_image(np.zeros((8, 8)), name="flat")
    widget.set_layer(image2d)
    assert "not a 4D image layer" in widget.status.value
    assert widget.layer.value is layer


def test_save_load_and_libertem(sample, tmp_path, qtbot):
    viewer, layer, widget = sample
    widget.twin.scan_rotation.value = -12.34
    widget.actions.save(tmp_path / "p.json")
    widget.twin.scan_rotation.value = 0.0
    widget.actions.load(tmp_path / "p.json")
    assert widget.twin.scan_rotation.value == pytest.approx(-12.34)
    assert widget.actions.copy_for_libertem().startswith("scan_rotation=-12.3400, flip_y=False")
    import json

    saved = json.loads(widget.actions.save_for_libertem(tmp_path / "l.json").read_text())
    assert saved["scan_rotation"] == pytest.approx(-12.34) and saved["flip_y"] is False
    widget.actions.load(tmp_path / "missing.json")
    assert "Could not load" in widget.status.value
    _wait(qtbot, widget)


def test_menu_action_docks_on_active_layer(make_napari_viewer, qtbot):
    from napari_emcal._napari.contributions import calibrate_overfocus

    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((4, 4, 8, 8), np.float32), name="tiny")
    widget = calibrate_overfocus(viewer)
    assert widget.layer.value.name == "tiny"
    _wait(qtbot, widget)
    viewer.add_image(np.zeros((8, 8)), name="flat")
    assert calibrate_overfocus(viewer) is None


def test_screenshot_is_not_blank(sample, qtbot):
    viewer, layer, widget = sample
    from napari_emcal._qt.layers import fit_view

    for other in viewer.layers:
        other.visible = other.name.endswith("shifted_sum")
    # fitted to it: napari's reset_view spans the 4D layer's detector, in µm, too
    fit_view(viewer, [widget.output_layer("shifted_sum")])
    qtbot.wait(100)
    shot = viewer.screenshot(canvas_only=True, flash=False)
    assert shot.ndim == 3 and shot[..., :3].std() > 5


def _lazy_layer(viewer, sample_layer, chunks):
    import dask.array as da

    data = da.from_array(np.asarray(sample_layer.data), chunks=chunks)
    return viewer.add_image(
        data, name="lazy", metadata=sample_layer.metadata, contrast_limits=(0, 10)
    )


def test_full_pass_can_be_cancelled(sample, qtbot):
    viewer, layer, widget = sample
    lazy = _lazy_layer(viewer, layer, (1, 48, 64, 64))  # 48 blocks: many progress reports
    widget.set_layer(lazy)
    _wait(qtbot, widget)
    before = widget.output_layer("shifted_sum").data.copy()
    widget.twin.scan_rotation.value = 10.0
    _wait(qtbot, widget)
    changed = widget.output_layer("shifted_sum").data.copy()
    assert not np.allclose(changed, before)
    widget.run_full()
    assert widget.cancel_button.enabled
    widget.cancel()
    _wait(qtbot, widget)
    assert "cancelled" in widget.status.value
    assert widget.progress.value == 0 and not widget.cancel_button.enabled
    np.testing.assert_array_equal(widget.output_layer("shifted_sum").data, changed)
    widget.run_full()  # the widget keeps working
    _wait(qtbot, widget)
    assert widget.status.value == "full resolution" and not widget.progress.visible


def test_preview_of_lazy_data_is_read_with_progress(sample, qtbot):
    viewer, layer, widget = sample
    lazy = _lazy_layer(viewer, layer, (4, 48, 64, 64))
    widget.set_layer(lazy)
    widget.preview.enabled_box.value = True
    widget.preview.detector_bin.value = 2
    widget.preview.scan_every.value = 2
    _wait(qtbot, widget)
    assert not widget.progress.visible
    assert widget.output_layer("shifted_sum").data.shape == (24, 24)
    reduced = widget.preview._cache[1]
    from napari_emcal.overfocus.preview import reduce_data

    np.testing.assert_array_equal(reduced, reduce_data(layer.data, 2, 2))


def test_hdf5_with_several_datasets_can_switch(make_napari_viewer, qtbot, tmp_path):
    import h5py

    path = tmp_path / "two.h5"
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        f["big"] = rng.random((6, 6, 16, 16)).astype(np.float32)
        f["small"] = rng.random((4, 5, 8, 8)).astype(np.float32)
    viewer = make_napari_viewer()
    viewer.open(str(path), plugin="napari-emcal")
    layer = viewer.layers[0]
    widget = calibrate_overfocus_widget(viewer)
    assert not widget.dataset.native.isHidden() and widget.dataset.value == "big"
    widget.dataset.value = "small"
    _wait(qtbot, widget)
    assert layer.data.shape == (4, 5, 8, 8)
    assert layer.metadata["emcal"]["dataset"] == "small"
    assert widget.scan_shape.value == "4, 5"
    assert widget.output_layer("shifted_sum").data.shape == (4, 5)


def calibrate_overfocus_widget(viewer):
    from napari_emcal._napari.contributions import calibrate_overfocus

    viewer.layers.selection.active = viewer.layers[0]
    return calibrate_overfocus(viewer)


def test_scan_shape_can_be_changed(sample, qtbot):
    viewer, layer, widget = sample
    original = np.asarray(layer.data)
    # typing applies nothing until Enter (it raised an error per keystroke before)
    widget.scan_shape.native.clear()
    qtbot.keyClicks(widget.scan_shape.native, "24, 96")
    assert layer.data.shape == (48, 48, 64, 64) and "product" not in widget.status.value
    qtbot.keyClick(widget.scan_shape.native, Qt.Key.Key_Return)
    _wait(qtbot, widget)
    assert layer.data.shape == (24, 96, 64, 64)
    np.testing.assert_array_equal(
        np.asarray(layer.data[1, 2]), original[2, 2]
    )  # frame 1*96+2 = 2*48+2
    assert widget.output_layer("shifted_sum").data.shape == (24, 96)
    widget.scan_shape.native.clear()
    qtbot.keyClicks(widget.scan_shape.native, "5, 5")
    qtbot.keyClick(widget.scan_shape.native, Qt.Key.Key_Return)
    assert "product must be 2304" in widget.status.value
    assert layer.data.shape == (24, 96, 64, 64)  # unchanged


def test_optimise_ends_at_the_calibrated_values(sample, qtbot, tmp_path):
    viewer, layer, widget = sample
    truth = TwinParams.from_json_dict(layer.metadata["emcal"]["ground_truth"])
    start = widget.params()  # the nominal parameters: 0°, no flip, 1.3 µm
    assert start.scan_rotation == 0.0 and not start.flip_y
    widget.run_calibration(refine=True)
    _wait(qtbot, widget, timeout=60000)
    p = widget.params()
    assert p.flip_y and p.scan_rotation == pytest.approx(83.0, abs=0.1)
    assert p.overfocus == pytest.approx(truth.overfocus, rel=5e-3)
    assert (p.cy, p.cx) == (pytest.approx(32.0, abs=0.3), pytest.approx(31.5, abs=0.3))
    assert widget.last_calibration.params.scan_rotation == pytest.approx(p.scan_rotation, abs=0.01)
    assert "optimised" in widget.calibration.status.value and not widget.progress.visible
    expected = compute(layer.data, p, outputs=["shifted_sum"])["shifted_sum"]
    np.testing.assert_allclose(widget.output_layer("shifted_sum").data, expected, rtol=1e-5)
    # saved with the standard errors while the twin holds the result, without once changed
    sigma = widget.last_calibration.uncertainty
    widget.actions.save(tmp_path / "twin.json")
    assert load_uncertainty(tmp_path / "twin.json") == pytest.approx(sigma)
    py4dstem = json.loads(widget.actions.save_for_py4dstem(tmp_path / "p4.json").read_text())
    assert py4dstem["QR_flip"] and py4dstem["QR_rotation_degrees"] == pytest.approx(
        90.0 - p.scan_rotation
    )
    assert py4dstem["standard_errors"]["QR_rotation_degrees"] == sigma["scan_rotation"]
    widget.twin.cy.value = p.cy + 1
    widget.actions.save(tmp_path / "changed.json")
    assert load_uncertainty(tmp_path / "changed.json") == {}
    widget.calibration.revert()
    _wait(qtbot, widget)
    assert widget.params().scan_rotation == 0.0 and not widget.params().flip_y
    widget.run_calibration(refine=False)
    _wait(qtbot, widget, timeout=60000)
    widget.calibration.accept()
    assert widget.params().flip_y and not widget.calibration.revert_button.enabled
    # kept on the layer for the dataset check
    kept = layer.metadata["emcal_calibration"]
    assert kept["scan_rotation"] == widget.params().scan_rotation and kept["flip_y"]


def test_calibration_failure_and_cancel_change_nothing(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    noise = np.random.default_rng(0).poisson(5.0, (24, 24, 32, 32)).astype(np.float32)
    viewer.add_image(noise, name="noise")
    from napari_emcal._napari.contributions import calibrate_overfocus

    widget = calibrate_overfocus(viewer)
    _wait(qtbot, widget)
    before = widget.params()
    widget.run_calibration()
    _wait(qtbot, widget, timeout=60000)
    assert "⚠ The images seen by different parts" in widget.status.value
    assert widget.calibration.status.value.startswith("failed")
    assert widget.params() == before
    widget.run_calibration()
    widget.cancel()
    _wait(qtbot, widget, timeout=60000)
    assert widget.calibration.status.value == "cancelled"
    assert widget.params() == before


def test_removing_the_layer_during_a_full_pass_ends_quietly(sample, qtbot):
    viewer, layer, widget = sample
    lazy = _lazy_layer(viewer, layer, (1, 48, 64, 64))
    widget.set_layer(lazy)
    _wait(qtbot, widget)
    widget.run_full()
    viewer.layers.remove(lazy)
    _wait(qtbot, widget)
    assert "removed" in widget.status.value or widget.layer.value is not lazy
    assert not widget.calibration.accept_button.enabled


def test_result_first_and_detector_beside_scan(sample):
    viewer, layer, widget = sample
    shifted = widget.output_layer("shifted_sum")  # (the widget's viewer is a napari proxy)
    assert viewer.layers[-1].name == shifted.name
    assert viewer.layers.selection.active.name == shifted.name
    aperture = widget.output_layer("aperture_sum")
    # the detector-space image lies right of the scan-space ones, not on them
    scan_right = shifted.extent.world[1][-1] * shifted.units[-1]  # nm
    assert aperture.extent.world[0][-1] * aperture.units[-1] >= scan_right  # µm
    lo, hi = shifted.contrast_limits
    assert np.percentile(shifted.data, 0.5) == pytest.approx(lo, rel=1e-6)


class _Event:
    def __init__(self, kind, position):
        self.type, self.position = kind, position


def _drive(callback, layer, events):
    generator = callback(layer, events[0])
    next(generator)
    for event in events[1:]:
        events[0].type = event.type  # napari updates the same event object
        try:
            next(generator)
        except StopIteration:
            break


def test_a_click_picks_but_a_pan_does_not(sample, qtbot):
    viewer, layer, widget = sample
    point = widget.output_layer("point")
    callback = point.mouse_drag_callbacks[-1]
    before = widget.outputs.select
    press = _Event("mouse_press", point.data_to_world((5, 7)))
    _drive(callback, point, [press, _Event("mouse_move", None), _Event("mouse_release", None)])
    assert widget.outputs.select == before  # a pan
    press = _Event("mouse_press", point.data_to_world((5, 7)))
    _drive(callback, point, [press, _Event("mouse_release", None)])
    assert widget.outputs.select == (5, 7)


def test_rotation_and_flip_sent_to_the_dataset_check(sample):
    viewer, layer, widget = sample
    widget.twin.scan_rotation.value = 83.0061
    widget.twin.flip_y.value = True
    check = widget.actions.send_to_check()
    assert check.settings.scan_rotation.value == pytest.approx(83.0061, abs=1e-4)
    assert check.settings.flip_y.value and check.layer.value.name == layer.name


def test_accepted_calibration_is_kept_in_the_history(sample, qtbot, tmp_path):
    from napari_emcal.history import History

    viewer, layer, widget = sample
    drift = widget.calibration.history
    drift.shown.value = True  # the drift plot, empty at first
    assert drift.points() == ([], [], []) and drift.plot._message.get_visible()
    widget.run_calibration(refine=True)
    _wait(qtbot, widget, timeout=60000)
    widget.calibration.accept()
    (entry,) = History().entries("overfocus")
    times, values, errors = drift.points()  # redrawn from the history on Accept
    assert values == [pytest.approx(entry.values["scan_rotation_deg"])]
    assert errors == [pytest.approx(entry.uncertainty["scan_rotation_deg"])]
    assert not drift.plot._message.get_visible() and drift.axes.get_visible()
    page = widget.actions.write_report(tmp_path / "report.html").read_text()
    assert f"{entry.values['scan_rotation_deg']:.4f}" in page and page.count("<img") == 2
    assert "agrees with the calibration of" in page or "DRIFT" in page
    assert entry.values["scan_rotation_deg"] == pytest.approx(83.0, abs=0.1)
    assert entry.values["flip_y"] is True and entry.uncertainty["scan_rotation_deg"] > 0
    assert "kept in the history" in widget.calibration.status.value
