"""True units for 4D work: scan-space results in nm from the scan step, detector-space
images in the detector's unit, and no "Inconsistent units" warning with a real image in nm
opened beside them."""

from contextlib import contextmanager
from unittest import mock

import numpy as np
import pytest

from tests.conftest import real_file

pytestmark = pytest.mark.gui


@contextmanager
def units_warnings():
    """The 'Inconsistent units' warnings napari's canvas shows meanwhile (a list)."""
    import napari._vispy.canvas as canvas

    found: list[str] = []
    with mock.patch.object(canvas, "show_warning") as shown:
        yield found
        from qtpy.QtWidgets import QApplication

        QApplication.processEvents()
        found.extend(str(c.args[0]) for c in shown.call_args_list if "units" in str(c.args[0]))


def _units(layer, last=2):
    return [f"{u:~}" for u in layer.units[-last:]]


def test_overfocus_sample_scan_space_in_nm_and_a_real_image_beside(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    with units_warnings() as warnings:
        viewer.open_sample("napari-emcal", "overfocus_grating")
        layer = viewer.layers[0]
        # scan axes in nm (1 nm scan step), detector axes in µm of the physical detector
        assert _units(layer, 4) == ["nm", "nm", "µm", "µm"]
        np.testing.assert_allclose(layer.scale, [1.0, 1.0, 55.0, 55.0])
        _, widget = viewer.window.add_plugin_dock_widget("napari-emcal", "Overfocus calibration")
        widget.set_layer(layer)
        widget.preview.enabled_box.value = False
        qtbot.waitUntil(lambda: widget.updates.idle and not widget.task.running, timeout=120000)
        for name in ("shifted_sum", "point", "selected", "sum"):
            out = viewer.layers[f"{layer.name} · {name}"]
            assert _units(out) == ["nm", "nm"], name
            np.testing.assert_allclose(out.scale, [1.0, 1.0])  # 1 nm per scan step
        aperture = viewer.layers[f"{layer.name} · aperture_sum"]
        assert _units(aperture) == ["µm", "µm"]
        np.testing.assert_allclose(aperture.scale, [55.0, 55.0])
        # detector space beside scan space, never stacked on it
        assert aperture.translate[1] * 1e3 > layer.data.shape[1] * 1.0
        # a real 2D image in nm opened afterwards
        (image,) = viewer.open(str(real_file("images/tvips/TVIPS_bin4.tif")), plugin="napari-emcal")
        assert _units(image) == ["nm", "nm"]
    assert warnings == []
    assert viewer.layers.extent.units is not None


def test_dataset_check_outputs_carry_units(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    with units_warnings() as warnings:
        viewer.open_sample("napari-emcal", "overfocus_grating")
        layer = viewer.layers[0]
        _, widget = viewer.window.add_plugin_dock_widget("napari-emcal", "4D dataset check")
        widget.set_layer(layer)
        widget.run()
        qtbot.waitUntil(lambda: widget.result is not None, timeout=60000)
        for out in viewer.layers:
            if out is layer or out.ndim != 2 or not out.name.startswith(layer.name):
                continue
            expected = ["µm", "µm"] if out.name.endswith("aperture_sum") else ["nm", "nm"]
            assert _units(out) == expected, out.name
    assert warnings == []
