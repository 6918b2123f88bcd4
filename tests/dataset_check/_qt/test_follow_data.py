"""The dataset check follows the data in front of it: switching datasets gives what a fresh
dock gives (the stale beam disk of issue 31 among them), and it reports scattering angles
from the file's camera length and a typed detector pixel size."""

import numpy as np
import pytest

from napari_emcal.dataset_check import diffraction_dataset
from napari_emcal.dataset_check._qt.widget import DatasetCheckWidget
from napari_emcal.units import from_si

from ...conftest import real_file

pytestmark = pytest.mark.gui


def _wait(qtbot, widget):
    qtbot.waitUntil(lambda: not widget.task.running, timeout=60000)


def _seen(widget):
    """What the dock shows and reports."""
    settings = widget.settings
    return {
        "beam": (widget.beam_controls.cy.value, widget.beam_controls.cx.value),
        "radius": widget.beam_controls.radius.value,
        "report": widget.report_label.value,
        "hint": widget.hint,
        "rotation": (settings.scan_rotation.value, settings.flip_y.value),
        "angles": (settings.camera_length.value, settings.detector_pixel.value),
        "sources": dict(settings.field_sources.sources),
        "max_count": settings.max_count.value,
    }


def test_a_check_on_another_dataset_equals_a_fresh_dock(make_napari_viewer, qtbot):
    """Issue 31: checked on one file, then on the overfocus sample, the dock kept the first
    file's beam disk (centre 125.3, 127.3 on a 64 x 64 detector) and reported no disk."""
    viewer = make_napari_viewer()
    first = viewer.add_image(
        diffraction_dataset((8, 8), (256, 256), centre=(125.3, 127.3), radius=5.4, seed=1),
        name="first",
        metadata={"emcal": {"camera_length": 0.6, "detector_max_count": 4095.0}},
    )
    viewer.open_sample("napari-emcal", "overfocus_grating")
    sample = viewer.layers["overfocus grating (simulated)"]
    widget = DatasetCheckWidget(viewer)
    widget.set_layer(first)
    widget.settings.scan_rotation.value = 12.0  # typed for the first dataset
    assert widget.run()
    _wait(qtbot, widget)
    assert widget.beam_controls.radius.value > 0 and widget.report is not None

    widget.set_layer(sample)
    assert widget.report is None and widget.beam_controls.radius.value == 0
    assert widget.run()
    _wait(qtbot, widget)
    fresh = DatasetCheckWidget(viewer)
    fresh.set_layer(sample)
    assert fresh.run()
    _wait(qtbot, fresh)
    assert _seen(widget) == _seen(fresh)
    assert "no bright-field disk" not in widget.report_label.value
    assert widget.report.summary() == fresh.report.summary()
    for name, image in fresh.result.images.items():
        np.testing.assert_array_equal(widget.result.images[name], image, err_msg=name)


def test_a_check_running_when_the_dataset_changes_is_dropped(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-emcal", "overfocus_grating")
    sample = viewer.layers["overfocus grating (simulated)"]
    other = viewer.add_image(
        diffraction_dataset((6, 6), (48, 48), centre=(20.0, 22.0), radius=6.0), name="other"
    )
    widget = DatasetCheckWidget(viewer)
    widget.set_layer(sample)
    assert widget.run()
    widget.set_layer(other)
    _wait(qtbot, widget)
    assert widget.report is None and widget.beam_controls.radius.value == 0


def test_angles_from_the_files_camera_length_and_a_typed_pixel_size(make_napari_viewer, qtbot):
    path = real_file("4d/fpd_hdf5/FPD_HDF5.hdf5")
    viewer = make_napari_viewer()
    viewer.open(str(path), plugin="napari-emcal")
    widget = DatasetCheckWidget(viewer)
    widget.set_layer(viewer.layers[-1])
    settings = widget.settings
    assert settings.camera_length.value == pytest.approx(600.0)  # mm, as `emcal info` reads
    assert "Camera length_m" in settings.field_sources.sources["camera_length"]
    assert settings.detector_pixel.value == 0  # the file does not say: unknown, marked
    assert "default" in settings.field_sources.sources["detector_pixel_size"]
    assert widget.run()
    _wait(qtbot, widget)
    assert "angles unknown" in widget.report_label.value
    settings.detector_pixel.value = 55.0  # µm, a Medipix3 pixel, typed
    assert widget.run()
    _wait(qtbot, widget)
    report = widget.report
    assert report.max_angle_mrad is not None and "mrad" in widget.report_label.value
    beam = report.beam
    expected = from_si(np.arctan(beam.radius * 55e-6 / 0.6), "mrad")
    assert report.disk_angle_mrad == pytest.approx(expected, rel=1e-6)
