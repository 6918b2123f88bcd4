"""The "Camera length (rings)" widget with a real viewer."""

import json

import numpy as np
import pytest

from napari_emcal.diffraction.simulate import halo_pattern

pytestmark = pytest.mark.gui


@pytest.fixture(autouse=True)
def _history(tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_EMCAL_HISTORY", str(tmp_path / "history.sqlite"))


def _wait(qtbot, widget, timeout=60000):
    qtbot.waitUntil(lambda: not widget.task.running, timeout=timeout)


@pytest.fixture
def rings(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-emcal", "au_ring_pattern")
    layer = viewer.layers[0]
    _, widget = viewer.window.add_plugin_dock_widget("napari-emcal", "Camera length (rings)")
    widget.set_layer(layer)
    return viewer, layer, widget


def test_calibrate_overlays_rings_and_shows_values(rings, qtbot, tmp_path):
    viewer, layer, widget = rings
    truth = layer.metadata["emcal"]["ground_truth"]
    # beam energy and detector pixel read from the layer's metadata, with their source
    assert widget.beam_energy.value == pytest.approx(200.0)
    assert widget.detector_pixel.value == pytest.approx(15.0)
    assert "sample" in widget.field_sources.sources["beam_energy"]
    assert widget.run()
    _wait(qtbot, widget)
    result = widget.result
    assert result is not None
    assert result.camera_length == pytest.approx(truth["camera_length_m"], rel=1e-3)
    assert "±" in widget.result_label.value and "mm" in widget.result_label.value
    rings_layer = viewer.layers[f"{layer.name} · rings"]
    assert rings_layer.nshapes == len(result.rings)
    centre = viewer.layers[f"{layer.name} · beam centre"]
    assert np.allclose(centre.data[0], truth["centre_px"], atol=0.1)
    # the profile plot has the standard's rings marked
    assert widget.plot.axes.lines
    # again: layers updated in place
    count = len(viewer.layers)
    widget.run()
    _wait(qtbot, widget)
    assert len(viewer.layers) == count and rings_layer.nshapes == len(widget.result.rings)
    # table and export
    widget.nominal.value = 154.5
    assert widget.add_to_table() == 0
    assert len(widget.table) == 1
    assert "history" in widget.status.value
    path = tmp_path / "cal.json"
    widget.export(path)
    document = json.loads(path.read_text())
    assert document["values"]["camera_length"]["unit"] == "m"
    assert document["py4dstem"]["Q_pixel_units"] == "A^-1"


def test_refusal_is_shown(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    layer = viewer.add_image(halo_pattern((256, 256)), name="halo")
    _, widget = viewer.window.add_plugin_dock_widget("napari-emcal", "Camera length (rings)")
    widget.set_layer(layer)
    assert widget.run()
    _wait(qtbot, widget)
    assert widget.result is None
    assert "amorphous" in widget.result_label.value
    assert "amorphous" in widget.status.value
    assert not widget.add_button.enabled


def test_menu_action_docks_and_runs(make_napari_viewer, qtbot):
    from napari_emcal._napari.contributions import calibrate_camera_length

    viewer = make_napari_viewer()
    viewer.open_sample("napari-emcal", "au_ring_pattern")
    widget = calibrate_camera_length(viewer)
    _wait(qtbot, widget)
    assert widget.result is not None


def test_4d_layer_is_calibrated_on_its_mean_pattern(make_napari_viewer, qtbot):
    from napari_emcal.diffraction import ring_pattern

    frames = [ring_pattern((256, 256), camera_length=0.07, dose=10.0, seed=s)[0] for s in range(4)]
    truth = ring_pattern((256, 256), camera_length=0.07, dose=None)[1]
    viewer = make_napari_viewer()
    layer = viewer.add_image(np.stack(frames).reshape(2, 2, 256, 256), name="rings 4D")
    _, widget = viewer.window.add_plugin_dock_widget("napari-emcal", "Camera length (rings)")
    widget.set_layer(layer)
    assert not widget.frames.native.isHidden() and widget.frames.value == "mean"
    widget.detector_pixel.value = 15.0
    widget.beam_energy.value = 200.0
    assert widget.run()
    _wait(qtbot, widget)
    assert widget.result.camera_length == pytest.approx(truth.camera_length, rel=2e-3)


def test_single_crystal_spots(make_napari_viewer, qtbot):
    from napari_emcal.diffraction.simulate import spot_pattern

    viewer = make_napari_viewer()
    image = spot_pattern((512, 512), camera_length=0.15, zone="001", rotation_deg=12.0)
    layer = viewer.add_image(image, name="spots")
    _, widget = viewer.window.add_plugin_dock_widget("napari-emcal", "Camera length (rings)")
    widget.set_layer(layer)
    widget.kind.value = "001"
    assert widget.run()
    _wait(qtbot, widget)
    assert widget.result.camera_length == pytest.approx(0.15, rel=1e-3)
    assert "reflections" in widget.result_label.value
