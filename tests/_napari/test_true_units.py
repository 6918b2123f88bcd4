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
        # the main canvas shows scan space; detector space is in the detector view dock
        assert out.visible and not aperture.visible and not layer.visible
        from napari_emcal._qt.detector_view import _VIEWS

        view = _VIEWS[viewer]
        assert view.source is layer
        viewer.cursor.position = (*viewer.cursor.position[:-2], 10.2, 30.7)  # nm
        assert view.scan_index == (10, 31)
        np.testing.assert_array_equal(view.frame(), np.asarray(layer.data[10, 31]))
        axes = view.plot.figure.axes
        np.testing.assert_array_equal(axes[0].images[0].get_array(), view.frame())  # drawn
        assert [ax.get_xlabel() for ax in axes] == ["mrad", "mrad"]
        # a click in the detector view picks the detector pixel shown as `point`
        from types import SimpleNamespace

        mrad = 55e-6 / 0.15 * 1e3  # per detector pixel
        panel = view.plot.figure.axes[1]
        view._clicked(SimpleNamespace(inaxes=panel, xdata=40.6 * mrad, ydata=20.2 * mrad))
        assert widget.outputs.point == (20, 41)
        # 64 detector pixels of 55 µm at 150 mm: 64 x 0.3667 mrad
        assert axes[0].get_xlim()[1] == pytest.approx(63.5 * 55e-6 / 0.15 * 1e3, rel=1e-6)
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
        # the result's layers are shown over a few turns of the event loop: the task runs
        # until the last is in place
        qtbot.waitUntil(
            lambda: widget.result is not None and not widget.task.running, timeout=120000
        )
        for out in viewer.layers:
            if out is layer or out.ndim != 2 or not out.name.startswith(layer.name):
                continue
            expected = ["µm", "µm"] if out.name.endswith("aperture_sum") else ["nm", "nm"]
            assert _units(out) == expected, out.name
        aperture = viewer.layers[f"{layer.name} · aperture_sum"]
        bright_field = viewer.layers[f"{layer.name} · aperture BF"]
        assert bright_field.visible and not aperture.visible  # the results in view
        widget.apertures.start()  # drawing happens on the aperture sum: detector space
        assert aperture.visible and not bright_field.visible
        shapes = viewer.layers.selection.active
        assert _units(shapes) == ["µm", "µm"]
    assert warnings == []


def test_detector_axes_in_mrad_um_or_pixels():
    from napari_emcal._qt.detector_view import detector_axes

    size, unit, _ = detector_axes({"detector_pixel_size": [55e-6, 55e-6], "camera_length": 0.15})
    assert unit == "mrad" and size == pytest.approx(55e-6 / 0.15 * 1e3)
    size, unit, _ = detector_axes({"detector_pixel_size": [55e-6, 55e-6]})
    assert unit == "µm" and size == pytest.approx(55.0)
    assert detector_axes({})[:2] == (1.0, "px")


def test_grating_apply_leaves_nm_everywhere_without_a_units_warning(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    with units_warnings() as warnings:
        viewer.open_sample("napari-emcal", "grating_image")
        layer = viewer.layers[0]
        _, widget = viewer.window.add_plugin_dock_widget("napari-emcal", "Grating pixel size")
        widget.layer.value = layer
        assert widget.run()
        qtbot.waitUntil(lambda: widget._worker is None, timeout=120000)
        acf = viewer.layers[f"{layer.name} · autocorrelation"]
        peaks = viewer.layers[f"{layer.name} · lattice peaks"]
        assert _units(acf) == _units(layer) == _units(peaks)
        widget.apply_to_layer()
        pixel = widget.result.pixel_size_nm
        assert _units(layer) == _units(acf) == _units(peaks) == ["nm", "nm"]
        np.testing.assert_allclose(layer.scale[-2:], [pixel, pixel])
        # the lags keep their meaning: the autocorrelation's zero lag is beside the image
        # (to its right, in nm now), and the starting peak sits at its lag times the new
        # pixel size from there
        result = widget.result
        zero = np.asarray(acf.metadata["emcal_lag"]["zero"])
        assert zero[1] > layer.extent.world[1][-1]  # right of the image, not over it
        np.testing.assert_allclose(acf.data_to_world(result.origin)[-2:], zero, atol=1e-6)
        np.testing.assert_allclose(
            peaks.data_to_world(peaks.data[0])[-2:],
            zero + np.asarray(result.start_peak) * pixel,
            atol=1e-6,
        )
        assert f"{viewer.layers.extent.units[-1]:~}" == "nm"  # the scale bar's unit
    assert warnings == []
