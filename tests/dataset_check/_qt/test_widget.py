"""The "4D dataset check" widget with a real viewer and apertures drawn programmatically."""

import dask.array as da
import numpy as np
import pytest

from napari_emcal.dataset_check import diffraction_dataset, ellipse

pytestmark = pytest.mark.gui

DESCAN = ((0.08, 0.0), (0.0, -0.06))


@pytest.fixture
def dataset(make_napari_viewer):
    viewer = make_napari_viewer()
    data = diffraction_dataset(
        (20, 24), (48, 48), centre=(22.4, 25.1), radius=7.0, descan=DESCAN, seed=3
    )
    layer = viewer.add_image(
        data,
        name="scan",
        metadata={"emcal": {"camera_length": 0.1, "detector_pixel_size": [55e-6, 55e-6]}},
    )
    _, widget = viewer.window.add_plugin_dock_widget("napari-emcal", "4D dataset check")
    widget.set_layer(layer)
    return viewer, layer, widget, data


def type_in(qtbot, field, text):
    """Type ``text`` into a text field and press Enter, as a user does."""
    from qtpy.QtCore import Qt

    field.native.clear()
    qtbot.keyClicks(field.native, text)
    qtbot.keyClick(field.native, Qt.Key.Key_Return)


def wait(qtbot, widget):
    qtbot.waitUntil(lambda: not widget.task.running, timeout=30000)


def test_beam_check_layers_and_report(dataset, qtbot):
    viewer, layer, widget, data = dataset
    assert widget.find_beam()
    wait(qtbot, widget)
    assert widget.beam_controls.cy.value == pytest.approx(22.4, abs=0.2)
    assert widget.beam_controls.cx.value == pytest.approx(25.1, abs=0.2)
    assert widget.beam_controls.radius.value == pytest.approx(7.0, abs=0.4)
    widget.settings.tolerance.value = 5.0  # the walk (2 px) within it: fixed apertures
    assert widget.run()
    wait(qtbot, widget)
    bf = viewer.layers["scan · aperture BF"].data
    mask = (
        np.hypot(
            *(
                np.mgrid[:48, :48]
                - np.array([widget.beam_controls.cy.value, widget.beam_controls.cx.value])[
                    :, None, None
                ]
            )
        )
        <= widget.beam_controls.radius.value
    )
    np.testing.assert_allclose(bf, (data.astype(float) * mask).sum(axis=(2, 3)), rtol=1e-12)
    for name in ("aperture ADF", "CoM y", "CoM x", "descan shift", "aperture_sum"):
        assert f"scan · {name}" in viewer.layers
    report = widget.report
    np.testing.assert_allclose(report.descan.matrix, DESCAN, atol=0.01)
    assert not report.descan_exceeds and "descan" in widget.report_label.value
    # 1 px of walk at the corners moves ~18 % of the 7 px disk out of the fixed BF aperture
    assert "walk, virtual imaging: matters — apertures are fixed" in widget.report_label.value
    assert "descan tolerance under" in widget.report_label.value
    assert "angles       up to" in widget.report_label.value
    assert widget.result.com_follows_beam  # the CoM always: exact
    # with a tolerance under the walk the apertures follow the beam (a second pass)
    widget.settings.tolerance.value = 1.0
    assert widget.run()
    wait(qtbot, widget)
    assert widget.result.images_follow_beam and widget.report.descan_exceeds
    assert "walk, virtual imaging: ok — apertures follow the beam" in widget.report_label.value
    followed = viewer.layers["scan · aperture BF"].data
    assert not np.allclose(followed, bf)
    widget.settings.tolerance.value = 5.0
    # running again updates the layers in place
    count = len(viewer.layers)
    widget.run()
    wait(qtbot, widget)
    assert len(viewer.layers) == count


def test_drawn_aperture_is_recomputed_when_edited(dataset, qtbot):
    viewer, layer, widget, data = dataset
    widget.settings.tolerance.value = 5.0  # fixed apertures: images are plain sums
    widget.run()  # no beam yet: the pass still gives the aperture sum and finds the disk
    wait(qtbot, widget)
    assert widget.beam_controls.radius.value > 5
    widget.apertures.start()
    shapes = viewer.layers["scan · apertures"]
    assert shapes.mode == "add_ellipse"
    box = np.array([[5.0, 5.0], [5.0, 20.0], [15.0, 20.0], [15.0, 5.0]])
    shapes.add_ellipses(box)
    qtbot.waitUntil(lambda: "scan · aperture shape 1" in viewer.layers, timeout=10000)
    wait(qtbot, widget)
    expected = (data.astype(float) * ellipse((48, 48), box)).sum(axis=(2, 3))
    np.testing.assert_allclose(viewer.layers["scan · aperture shape 1"].data, expected)
    shapes.data = [box + [20.0, 20.0]]  # an edit: moved
    moved = (data.astype(float) * ellipse((48, 48), box + 20)).sum(axis=(2, 3))
    qtbot.waitUntil(
        lambda: np.allclose(viewer.layers["scan · aperture shape 1"].data, moved), timeout=10000
    )


def test_send_beam_centre_to_overfocus(dataset, qtbot):
    viewer, layer, widget, data = dataset
    widget.find_beam()
    wait(qtbot, widget)
    overfocus = widget.beam_controls.send_to_overfocus()
    assert overfocus.twin.cy.value == pytest.approx(widget.beam_controls.cy.value, abs=0.01)
    assert overfocus.twin.cx.value == pytest.approx(widget.beam_controls.cx.value, abs=0.01)


def test_descan_exchanged_with_overfocus_and_saved(dataset, qtbot, tmp_path):
    import json

    from napari_emcal.overfocus import TwinParams

    viewer, layer, widget, data = dataset
    assert widget.descan.send_to_overfocus() is None  # nothing fitted yet: said so
    assert "Run the check first" in widget.status.value
    widget.run()
    wait(qtbot, widget)
    fit = widget.report.descan
    overfocus = widget.descan.send_to_overfocus()
    assert overfocus.twin.cy.value == pytest.approx(fit.centre[0], abs=0.01)
    assert overfocus.twin.cx.value == pytest.approx(fit.centre[1], abs=0.01)
    if "descan" in overfocus.twin.field_sources.fields:  # the twin's controls show it
        np.testing.assert_allclose(overfocus.params().descan, fit.matrix, atol=1e-4)  # shown
    # the twin's descan comes back with the rotation and is compared in the report
    twin = overfocus.params().replace(descan=DESCAN)
    overfocus.params = lambda: twin
    assert overfocus.actions.send_to_check() is widget
    assert "vs the descan of the Overfocus calibration" in widget.report_label.value
    widget.receive_descan(np.array(DESCAN) + 0.05, np.full((2, 2), 1e-3), "typed")
    assert "DISAGREE" in widget.report_label.value
    # saved for LiberTEM and py4DSTEM
    widget.descan.save("libertem", tmp_path / "lt.json")
    document = json.loads((tmp_path / "lt.json").read_text())
    assert document["cy"] == pytest.approx(fit.centre[0]) and len(document["regression"]) == 3
    widget.descan.save("py4dstem", tmp_path / "origin.npz")
    with np.load(tmp_path / "origin.npz") as origin:
        assert origin["qx0"].shape == data.shape[:2]
    assert isinstance(twin, TwinParams)


def test_a_pass_can_be_cancelled(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    data = da.from_array(
        diffraction_dataset((32, 32), (32, 32), radius=5, seed=1), chunks=(1, 32, -1, -1)
    )
    layer = viewer.add_image(data, name="lazy")
    _, widget = viewer.window.add_plugin_dock_widget("napari-emcal", "4D dataset check")
    widget.set_layer(layer)
    assert widget.run()
    widget.cancel_button.changed.emit(True)  # Cancel: the pass stops at its next block

    wait(qtbot, widget)
    assert "cancelled" in widget.status.value and widget.report is None


def test_menu_action(make_napari_viewer, qtbot):
    from napari_emcal._napari.contributions import check_dataset

    viewer = make_napari_viewer()
    viewer.open_sample("napari-emcal", "overfocus_grating")
    widget = check_dataset(viewer)
    wait(qtbot, widget)
    assert widget.report is not None and "CoM/DPC" in widget.report_label.value


def test_executor_setting_is_used_and_kept(dataset, make_napari_viewer, qtbot):
    viewer, layer, widget, data = dataset
    widget.find_beam()
    wait(qtbot, widget)
    widget.run()
    wait(qtbot, widget)
    local = viewer.layers["scan · aperture BF"].data.copy()
    type_in(qtbot, widget.executor, "threads")
    assert "threads" in widget.status.value
    widget.run()  # through LiberTEM's thread executor: the same images
    wait(qtbot, widget)
    # compensated frames are floats: sums in another block order differ in the last bit
    np.testing.assert_allclose(viewer.layers["scan · aperture BF"].data, local, rtol=1e-12)
    _, other = make_napari_viewer().window.add_plugin_dock_widget(
        "napari-emcal", "4D dataset check"
    )
    assert other.executor.value == "threads"  # kept for the next widget and session
    type_in(qtbot, widget.executor, "over there")
    assert "executor must be one of" in widget.status.value
    assert not widget.run()


def _deflected_disks(rotation, flip, scan=(32, 32), detector=(32, 32), radius=6.0):
    """Frames of a bright-field disk moved by a curl-free specimen field seen through the
    scan rotation and flip (the CoM field of a phase object)."""
    from scipy import ndimage

    from napari_emcal.geometry import rotation_flip_matrix

    rng = np.random.default_rng(1)
    potential = ndimage.gaussian_filter(rng.normal(size=scan), 2.0)
    e_y, e_x = np.gradient(potential)
    inverse = np.linalg.inv(rotation_flip_matrix(rotation, flip))
    d_y = inverse[0, 0] * e_y + inverse[0, 1] * e_x
    d_x = inverse[1, 0] * e_y + inverse[1, 1] * e_x
    scale = 0.8 / max(np.abs(d_y).max(), np.abs(d_x).max())  # up to 0.8 px
    yy, xx = np.mgrid[: detector[0], : detector[1]]
    c = (np.array(detector) - 1) / 2
    r = np.hypot(
        yy[None, None] - c[0] - scale * d_y[..., None, None],
        xx[None, None] - c[1] - scale * d_x[..., None, None],
    )
    return (1000 * np.clip(radius + 0.5 - r, 0, 1)).astype(np.float32)


def test_accepted_overfocus_calibration_is_used_and_compared(make_napari_viewer, qtbot):
    from napari_emcal._qt.layers import record_calibration

    viewer = make_napari_viewer()
    layer = viewer.add_image(_deflected_disks(37.0, True), name="phase")
    _, widget = viewer.window.add_plugin_dock_widget("napari-emcal", "4D dataset check")
    widget.set_layer(layer)
    assert widget.run()
    wait(qtbot, widget)
    com = widget.report.com_rotation
    assert com is not None and com.flip_y
    assert abs((com.scan_rotation - 37.0 + 90) % 180 - 90) < 0.5
    assert "overfocus calibration" not in widget.report_label.value
    # an overfocus calibration accepted on the layer: its rotation and flip are taken
    record_calibration(layer, com.scan_rotation + 0.1, True, {"scan_rotation": 0.02})
    widget.set_layer(layer)
    assert widget.settings.scan_rotation.value == pytest.approx(com.scan_rotation + 0.1, abs=1e-4)
    assert widget.settings.flip_y.value
    assert widget.run()
    wait(qtbot, widget)
    assert "vs the overfocus calibration: agree within 0.10°" in widget.report_label.value
    record_calibration(layer, com.scan_rotation + 120.0, True, {})
    assert widget.run()
    wait(qtbot, widget)
    assert "disagree by" in widget.report_label.value


def test_results_first_and_com_diverging(dataset, qtbot):
    viewer, layer, widget, data = dataset
    assert widget.run()
    wait(qtbot, widget)
    assert viewer.layers[-1].name == "scan · aperture BF"  # the answer, on top
    assert viewer.layers.selection.active.name == "scan · aperture BF"
    com = viewer.layers["scan · CoM y"]
    assert com.colormap.name == "bwr"
    assert com.contrast_limits[0] == pytest.approx(-com.contrast_limits[1])
    aperture = viewer.layers["scan · aperture_sum"]
    assert aperture.extent.world[0][-1] >= viewer.layers["scan · CoM y"].extent.world[1][-1]
