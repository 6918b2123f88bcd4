"""The grating dock follows the image in front of it, draws the autocorrelation beside the
image, and does not offer a result far from the file's calibration for Apply."""

import numpy as np
import pytest

from napari_emcal.grating._qt.widget import GratingWidget
from napari_emcal.samples import grating_image

pytestmark = pytest.mark.gui


def _wait(qtbot, widget, timeout=60000):
    qtbot.waitUntil(lambda: widget._worker is None, timeout=timeout)


def _seen(widget):
    return {
        "result": widget.result_label.value,
        "apply": widget.apply_button.enabled,
        "add": widget.add_button.enabled,
        "marker": widget.marker_button.enabled,
        "magnification": widget.magnification.value,
        "sources": dict(widget.field_sources.sources),
        "hint": widget.hint,
        "pixel_size": widget.result.pixel_size_nm if widget.result else None,
    }


@pytest.fixture
def two_images(make_napari_viewer):
    viewer = make_napari_viewer()
    image, metadata = grating_image()
    first = viewer.add_image(image, name="first", metadata={"emcal": metadata})
    # the same grating at another magnification, recorded by its file
    second = viewer.add_image(
        np.asarray(image)[::2, ::2],
        name="second",
        metadata={"emcal": {"magnification": 1800.0, "pixel_size_nm": 8.274}},
    )
    return viewer, first, second


def test_another_image_gives_what_a_fresh_dock_gives(two_images, qtbot):
    viewer, first, second = two_images
    widget = GratingWidget(viewer)
    widget.set_layer(first)
    assert widget.run()
    _wait(qtbot, widget)
    assert widget.result.found and widget.apply_button.enabled
    widget.set_layer(second)
    assert widget.result is None and not widget.apply_button.enabled  # not the first's
    fresh = GratingWidget(viewer)
    fresh.set_layer(second)
    assert _seen(widget) == _seen(fresh)
    for dock in (widget, fresh):
        assert dock.run()
        _wait(qtbot, dock)
    assert _seen(widget) == _seen(fresh)
    assert widget.result.pixel_size_nm == pytest.approx(8.274, rel=5e-3)


def test_autocorrelation_beside_the_image_and_the_image_stays_selected(two_images, qtbot):
    viewer, first, _ = two_images
    widget = GratingWidget(viewer)
    widget.set_layer(first)
    assert widget.run()
    _wait(qtbot, widget)
    acf = viewer.layers["first · autocorrelation"]
    image_box, acf_box = np.asarray(first.extent.world), np.asarray(acf.extent.world)
    assert acf_box[0, -1] > image_box[1, -1]  # to the right, not over the image
    assert acf_box[0, -2] == pytest.approx(image_box[0, -2])  # tops aligned
    assert viewer.layers.selection.active is first
    # a click on a lattice peak of the autocorrelation places the marker at its lag
    result = widget.result
    peak = np.asarray(result.start_peak, float)
    world = acf.data_to_world(result.autocorrelation_pixel(peak))

    class Press:
        type = "mouse_press"
        position = tuple(world)

    for callback in list(viewer.mouse_drag_callbacks):
        if getattr(callback, "_emcal_marker", None) is not None:
            callback(viewer, Press())
    np.testing.assert_allclose(widget.marker, peak, atol=1e-6)
    marker = viewer.layers["first · marker"]
    np.testing.assert_allclose(marker.data_to_world(marker.data[0]), world, atol=1e-6)


def test_a_result_far_from_the_files_calibration_is_not_offered(two_images, qtbot):
    viewer, _, second = two_images
    widget = GratingWidget(viewer)
    widget.set_layer(second)
    widget.mode.value = "lattice"  # the grating measured as a crystal lattice
    widget.spacing.value = 0.3905
    assert widget.run()
    _wait(qtbot, widget)
    assert widget.result.found
    assert not widget.apply_button.enabled
    assert "wrong specimen mode" in widget.result_label.value
    assert "wrong specimen mode" in widget.status.value
    scale = tuple(second.scale)
    widget.apply_to_layer()
    assert tuple(second.scale) == scale
