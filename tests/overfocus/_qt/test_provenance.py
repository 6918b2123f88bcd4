"""Pre-filled twin values say where they came from; outputs carry the source's units."""

import numpy as np
import pytest

from tests.conftest import real_file

pytestmark = pytest.mark.gui


def test_values_from_the_file_say_so_and_defaults_are_marked(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    (layer,) = viewer.open(str(real_file("4d/fpd_hdf5/FPD_HDF5.hdf5")), plugin="napari-emcal")
    _, widget = viewer.window.add_plugin_dock_widget("napari-emcal", "Overfocus calibration")
    widget.set_layer(layer)
    # read from the file: its value, no mark, the key in the tooltip
    assert widget.twin.camera_length.value == pytest.approx(600.0)  # mm
    assert widget.twin.scan_step.value == pytest.approx(5.4826, rel=1e-4)  # nm
    assert "Camera length_m" in widget.twin.camera_length.tooltip
    assert not widget.twin.camera_length.label.startswith("⚠")
    # not in the file: the widget's default, marked until the user changes it
    assert (
        widget.twin.overfocus.label.startswith("⚠") and "default" in widget.twin.overfocus.tooltip
    )
    assert widget.twin.detector_pixel.label.startswith("⚠")
    widget.twin.overfocus.value = 2.0
    assert not widget.twin.overfocus.label.startswith("⚠")
    assert "typed by the user" in widget.twin.overfocus.tooltip
    widget.twin.field_sources.confirm()
    assert widget.twin.field_sources.defaults() == []


@pytest.fixture
def fpd_computed(make_napari_viewer, qtbot):
    """The real FPD file in a viewer with its five images computed at full resolution:
    (layer, shifted_sum layer)."""
    viewer = make_napari_viewer()
    (layer,) = viewer.open(str(real_file("4d/fpd_hdf5/FPD_HDF5.hdf5")), plugin="napari-emcal")
    _, widget = viewer.window.add_plugin_dock_widget("napari-emcal", "Overfocus calibration")
    widget.set_layer(layer)
    widget.preview.enabled_box.value = False
    widget.update_now()
    qtbot.waitUntil(lambda: f"{layer.name} · shifted_sum" in viewer.layers, timeout=20000)
    qtbot.waitUntil(lambda: widget.updates.idle, timeout=20000)
    return layer, viewer.layers[f"{layer.name} · shifted_sum"]


def test_output_layers_carry_the_source_scale_without_a_units_conflict(fpd_computed):
    layer, shifted = fpd_computed
    assert shifted.scale == pytest.approx([5.4826] * 2, rel=1e-4)  # nm per scan pixel
    # scan space in nm; this file records no detector pixel size, so the 4D layer's
    # detector axes stay in pixels (no length is invented for them)
    assert [f"{u:~}" for u in shifted.units] == ["nm", "nm"]
    assert [f"{u:~}" for u in layer.units] == ["nm", "nm", "pixel", "pixel"]


def test_save_shifted_sum_and_the_4d_layer_as_hyperspy_signals(fpd_computed, tmp_path):
    from rsciio.hspy import file_reader

    layer, shifted = fpd_computed
    shifted.save(str(tmp_path / "shifted.hspy"), plugin="napari-emcal")
    (signal,) = file_reader(str(tmp_path / "shifted.hspy"))
    np.testing.assert_array_equal(signal["data"], shifted.data)
    assert [a["units"] for a in signal["axes"]] == ["nm", "nm"]  # the scan's, not "pixel"
    assert signal["axes"][1]["scale"] == pytest.approx(5.4826, rel=1e-4)
    layer.save(str(tmp_path / "scan.hspy"), plugin="napari-emcal")
    (signal,) = file_reader(str(tmp_path / "scan.hspy"), lazy=True)
    assert signal["data"].shape == layer.data.shape
    assert signal["axes"][0]["units"] == "nm" and signal["axes"][3]["units"] in ("mrad", "px")
