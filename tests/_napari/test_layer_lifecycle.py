"""Widgets survive their layer's removal and renaming (issue 19)."""

import pytest

from napari_emcal.dataset_check import diffraction_dataset

pytestmark = pytest.mark.gui


@pytest.fixture
def check(make_napari_viewer):
    viewer = make_napari_viewer()
    layer = viewer.add_image(diffraction_dataset((12, 12), (32, 32), radius=5.0), name="scan")
    _, widget = viewer.window.add_plugin_dock_widget("napari-emcal", "4D dataset check")
    widget.set_layer(layer)
    return viewer, layer, widget


def test_outputs_follow_a_renamed_source(check, qtbot):
    viewer, layer, widget = check
    assert widget.run()  # finds the beam itself: BF and ADF images at the first run
    qtbot.waitUntil(lambda: not widget.task.running, timeout=30000)
    assert "scan · aperture BF" in viewer.layers and "scan · aperture ADF" in viewer.layers
    before = len(viewer.layers)
    assert "scan · CoM y" in viewer.layers
    layer.name = "specimen A"
    assert "specimen A · CoM y" in viewer.layers and "scan · CoM y" not in viewer.layers
    assert widget.run()  # the outputs are updated in place, not duplicated
    qtbot.waitUntil(lambda: not widget.task.running, timeout=30000)
    names = [lyr.name for lyr in viewer.layers]
    assert len(names) >= before and not any(name.startswith("scan") for name in names)
    assert all(name.startswith("specimen A") for name in names)  # none orphaned


def test_a_result_for_a_removed_layer_is_dropped_quietly(check, qtbot):
    viewer, layer, widget = check
    assert widget.run()
    viewer.layers.remove(layer)
    qtbot.waitUntil(lambda: not widget.task.running, timeout=30000)
    # dropped when it comes back, or cancelled at once when the dock notices the removal
    # first (the dock follows its data): either way said, and no output for it
    status = widget.status.value
    assert "was removed while it was processed" in status or "cancelled" in status, status
    assert not any(name.endswith("CoM y") for name in (lyr.name for lyr in viewer.layers))


def test_grating_result_for_a_removed_image_is_dropped(make_napari_viewer, qtbot):
    from napari_emcal.specimens import grating_specimen

    viewer = make_napari_viewer()
    layer = viewer.add_image(grating_specimen((256, 256), period=12.0), name="grating")
    _, widget = viewer.window.add_plugin_dock_widget("napari-emcal", "Grating pixel size")
    widget.layer.value = layer
    widget.spacing.value = 463.0
    assert widget.run()
    viewer.layers.remove(layer)
    qtbot.waitUntil(lambda: widget._worker is None, timeout=30000)
    assert "was removed" in widget.status.value
    assert len(viewer.layers) == 0  # no output for an image that is gone
