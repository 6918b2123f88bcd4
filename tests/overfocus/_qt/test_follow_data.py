"""The overfocus dock follows the data in front of it: pointed at another dataset it gives
what a fresh dock gives; a run whose dataset goes away ends visibly; a run's progress and
Cancel stay in view; with no dataset a button says what to do."""

import numpy as np
import pytest

from napari_emcal.overfocus._qt.widget import OverfocusWidget

pytestmark = pytest.mark.gui


def _wait(qtbot, widget, timeout=60000):
    qtbot.waitUntil(lambda: widget.updates.idle and not widget.task.running, timeout=timeout)


def _state(widget):
    """What a user sees of the dock, and what it would save or report."""
    return {
        "params": widget.params(),
        "sources": dict(widget.twin.field_sources.sources),
        "hint": widget.hint,
        "calibration": widget.calibration.status.value,
        "accept": widget.calibration.accept_button.enabled,
        "last_calibration": widget.last_calibration,
        "preview": widget.preview.factors,
        "picks": (widget.outputs.select, widget.outputs.point),
    }


def test_a_retargeted_dock_equals_a_fresh_dock(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-emcal", "overfocus_grating")
    sample = viewer.layers[0]
    rng = np.random.default_rng(1)
    other = viewer.add_image(
        rng.poisson(3.0, (12, 16, 32, 32)).astype(np.float32),
        name="other",
        metadata={"emcal": {"camera_length": 0.6, "scan_step": [5e-9, 5e-9]}},
    )
    widget = OverfocusWidget(viewer)
    widget.set_layer(other)
    _wait(qtbot, widget)
    # state derived from the first dataset: typed values, a calibration, picks, images
    widget.twin.overfocus.value = 7.5
    widget.twin.semiconv.value = 3.0
    token = widget.session.begin_calibration(widget.params())
    widget.session.calibration_done(token, widget.params().replace(scan_rotation=33.0))
    widget.calibration.accept()
    widget.outputs.select_frame((3, 4))
    _wait(qtbot, widget)
    assert widget.last_calibration is not None and widget.session.last_images

    widget.set_layer(sample)
    _wait(qtbot, widget)
    fresh = OverfocusWidget(viewer)
    fresh.set_layer(sample)
    _wait(qtbot, fresh)
    assert _state(widget) == _state(fresh)
    for name, image in fresh.session.last_images.items():
        np.testing.assert_allclose(widget.session.last_images[name], image, err_msg=name)


def test_new_data_in_the_layer_forget_the_previous_calibration(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-emcal", "overfocus_grating")
    layer = viewer.layers[0]
    widget = OverfocusWidget(viewer)
    widget.set_layer(layer)
    _wait(qtbot, widget)
    token = widget.session.begin_calibration(widget.params())
    widget.session.calibration_done(token, widget.params().replace(scan_rotation=33.0))
    assert widget.calibration.accept_button.enabled
    layer.data = np.asarray(layer.data)[:, :, ::-1]  # a script puts other frames in
    _wait(qtbot, widget)
    assert widget.last_calibration is None and not widget.calibration.accept_button.enabled


def test_removing_the_layer_mid_calibration_says_so_and_restores(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-emcal", "overfocus_grating")
    layer = viewer.layers[0]
    widget = OverfocusWidget(viewer)
    widget.set_layer(layer)
    _wait(qtbot, widget)
    widget.twin.overfocus.value = 1.3
    before = widget.params()
    assert widget.calibration.run(refine=True)
    qtbot.waitUntil(lambda: widget.session.take_live() is not None or True, timeout=1000)
    viewer.layers.remove(layer)
    assert "removed" in widget.status.value and "stopped" in widget.status.value
    _wait(qtbot, widget)
    assert widget.params() == before
    assert widget.calibration.status.value.startswith("the dataset changed")
    assert not widget.calibration.accept_button.enabled and widget.last_calibration is None
    assert "optimising" not in widget.status.value


def test_optimise_with_no_dataset_says_what_to_do(make_napari_viewer):
    viewer = make_napari_viewer()
    widget = OverfocusWidget(viewer)
    assert widget.calibration.run(refine=True) is False
    assert "Open a 4D STEM dataset" in widget.status.value
    widget.run_full()
    assert "Open a 4D STEM dataset" in widget.status.value


def test_progress_and_cancel_stay_in_view_while_a_task_runs(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1366, 768)
    viewer.open_sample("napari-emcal", "overfocus_grating")
    _, widget = viewer.window.add_plugin_dock_widget("napari-emcal", "Overfocus calibration")
    widget.set_layer(viewer.layers[0])
    _wait(qtbot, widget)
    footer = widget._footer.native
    assert not widget.progress.visible and not widget.cancel_button.visible  # idle
    assert widget.calibration.run(refine=True)
    qtbot.wait(50)
    assert widget.progress.native.isVisible() and widget.cancel_button.native.isVisible()
    # in the footer below the scrolling controls: in view wherever the dock is scrolled
    for control in (widget.progress, widget.cancel_button, widget.status):
        assert footer.isAncestorOf(control.native)
        assert not widget.root_native_widget.isAncestorOf(control.native)
    dock_bottom = widget.native.mapToGlobal(widget.native.rect().bottomLeft()).y()
    cancel_bottom = widget.cancel_button.native.mapToGlobal(
        widget.cancel_button.native.rect().bottomLeft()
    ).y()
    assert cancel_bottom <= dock_bottom
    window = viewer.window._qt_window
    assert cancel_bottom <= window.mapToGlobal(window.rect().bottomLeft()).y()
    widget.cancel()
    _wait(qtbot, widget)
    assert not widget.cancel_button.visible
