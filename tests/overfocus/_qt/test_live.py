"""The overfocus dock's live source, against LiberTEM-live's Merlin simulator replaying a
real recording on the loopback address (issue 23)."""

import numpy as np
import pytest

from napari_emcal.io.readers import open_4d
from napari_emcal.overfocus import TwinParams, compute
from napari_emcal.overfocus.images import OUTPUTS

from ...conftest import free_ports
from ...merlin_files import REPLAY_PARAMS

pytestmark = pytest.mark.gui

PARAMS = TwinParams(**REPLAY_PARAMS)


def _dock(make_napari_viewer, data_port, control_port):
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-emcal", "Overfocus calibration")
    widget.set_params(PARAMS, update=False)
    live = widget.live
    live.enabled_box.value = True
    live.data_port.value, live.control_port.value = data_port, control_port
    live.scan_shape.value = "4, 2"
    live.timeout.value = 20.0
    return viewer, widget, live


def test_an_acquisition_becomes_the_dataset_with_its_images(
    make_napari_viewer, qtbot, merlin_sim, tmp_path
):
    data_port, control_port, header = merlin_sim
    viewer, widget, live = _dock(make_napari_viewer, data_port, control_port)
    assert live.start()
    qtbot.waitUntil(lambda: not widget.task.running, timeout=60000)
    qtbot.waitUntil(lambda: widget.updates.idle, timeout=30000)
    recorded = np.asarray(open_4d(header, scan_shape=(4, 2)).data)
    layer = live.layer
    np.testing.assert_array_equal(layer.data, recorded)
    assert widget.layer.value.name == layer.name and live.received == 1
    assert "1 acquisition(s) received" in live.message.value
    # the twin typed before the acquisition is kept (a stream records no lengths)
    kept = widget.params()
    assert (kept.cy, kept.cx, kept.scan_rotation) == (128.0, 128.0, 20.0)
    assert kept.detector_pixel_size == pytest.approx(55e-6, rel=1e-12)
    widget.preview.enabled_box.value = False
    widget.update_now()
    qtbot.waitUntil(lambda: widget.updates.idle, timeout=30000)
    expected = compute(recorded, kept)
    for name in OUTPUTS:
        np.testing.assert_allclose(
            widget.output_layer(name).data, expected[name], rtol=1e-12, err_msg=name
        )
    live.save(tmp_path / "scan.npy")  # kept as the method's authors recommend
    np.testing.assert_array_equal(np.load(tmp_path / "scan.npy"), recorded)


def test_no_detector_is_said_in_the_dock(make_napari_viewer, qtbot):
    (port,) = free_ports(1)
    viewer, widget, live = _dock(make_napari_viewer, port, port)
    live.timeout.value = 1.0
    assert live.start()
    qtbot.waitUntil(lambda: not widget.task.running, timeout=30000)
    assert "nothing answers on the control port" in widget.status.value
    assert "stopped" in live.message.value and live.layer is None
    live.scan_shape.value = "4 by 2"
    assert not live.start()
    assert "a scan shape is 'ny, nx'; got '4 by 2'" in widget.status.value


def test_optimise_on_a_received_scan_recovers_the_twin(make_napari_viewer, qtbot, tmp_path):
    """A simulated overfocused scan, replayed as the Merlin would send it: the dock's
    Optimise on the frames received finds rotation, flip and overfocus."""
    from ...conftest import real_file, start_merlin_simulator, stop_simulator
    from ...merlin_files import simulated_recording

    template = real_file("4d/merlin_4x2/001_4x2_6bit.hdr")
    header, frames, truth = simulated_recording(template, tmp_path / "sim")
    process, data_port, control_port = start_merlin_simulator(header, (32, 32))
    try:
        viewer, widget, live = _dock(make_napari_viewer, data_port, control_port)
        start = truth.replace(scan_rotation=0.0, flip_y=False, overfocus=1.0e-6)
        widget.set_params(start, update=False)
        live.scan_shape.value = "32, 32"
        assert live.start()
        qtbot.waitUntil(lambda: not widget.task.running, timeout=60000)
        assert live.received == 1
        np.testing.assert_array_equal(live.layer.data, frames)
        widget.run_calibration(refine=True)
        qtbot.waitUntil(lambda: not widget.task.running, timeout=120000)
        found = widget.last_calibration.params
        assert found.flip_y
        assert abs((found.scan_rotation - 37.0 + 180) % 360 - 180) < 0.3
        assert found.overfocus == pytest.approx(1.2e-6, rel=0.01)
    finally:
        stop_simulator(process)


def test_a_connection_lost_mid_scan_keeps_the_frames_received(make_napari_viewer, qtbot, tmp_path):
    from ...conftest import real_file, start_merlin_simulator, stop_simulator
    from ...merlin_files import write_merlin

    # a scan long enough to be cut: 4096 frames at 3 ms
    frames = np.random.default_rng(2).integers(1, 50, (64, 64, 32, 32)).astype(np.uint16)
    header = write_merlin(real_file("4d/merlin_4x2/001_4x2_6bit.hdr"), frames, tmp_path / "s")
    process, data_port, control_port = start_merlin_simulator(header, (64, 64), dwell_us=3000)
    try:
        viewer, widget, live = _dock(make_napari_viewer, data_port, control_port)
        live.scan_shape.value = "64, 64"
        assert live.start()
        qtbot.waitUntil(lambda: live.layer is not None, timeout=30000)
        stop_simulator(process)  # the detector goes away mid-scan
        qtbot.waitUntil(lambda: not widget.task.running, timeout=60000)
    finally:
        stop_simulator(process)
    # the live panel keeps the reason; the dock's status line moves on to the images of
    # the frames received, which are recomputed at once
    assert "stopped" in live.message.value and "broke off after" in live.message.value
    assert live.received == 0
    arrived = live.layer.data.reshape(4096, -1).any(axis=1)
    assert 0 < arrived.sum() < 4096  # kept, and honestly partial
    np.testing.assert_array_equal(
        live.layer.data.reshape(4096, -1)[arrived], frames.reshape(4096, -1)[arrived]
    )


def test_closing_the_dock_stops_the_acquisition(make_napari_viewer, qtbot, tmp_path):
    from ...conftest import real_file, start_merlin_simulator, stop_simulator
    from ...merlin_files import write_merlin

    frames = np.random.default_rng(3).integers(1, 50, (64, 64, 32, 32)).astype(np.uint16)
    header = write_merlin(real_file("4d/merlin_4x2/001_4x2_6bit.hdr"), frames, tmp_path / "s")
    process, data_port, control_port = start_merlin_simulator(header, (64, 64), dwell_us=3000)
    try:
        viewer, widget, live = _dock(make_napari_viewer, data_port, control_port)
        live.scan_shape.value = "64, 64"
        task = widget.task
        assert live.start()
        qtbot.waitUntil(lambda: live.layer is not None, timeout=30000)
        viewer.window.remove_dock_widget(widget.native)  # the user closes the dock
        widget.native.deleteLater()
        qtbot.waitUntil(lambda: task.worker is None, timeout=10000)  # well before 12 s
        assert live.received == 0
    finally:
        stop_simulator(process)


def test_a_hostile_peer_is_said_in_the_dock(make_napari_viewer, qtbot, hostile_peer):
    """A peer that sends garbage or closes at once: a message in the dock, no traceback."""
    data_port, control_port, _ = hostile_peer
    viewer, widget, live = _dock(make_napari_viewer, data_port, control_port)
    live.timeout.value = 3.0
    assert live.start()
    qtbot.waitUntil(lambda: not widget.task.running, timeout=30000)
    from qtpy.QtCore import QThreadPool

    # the worker's thread is done too before the viewer closes
    qtbot.waitUntil(lambda: QThreadPool.globalInstance().activeThreadCount() == 0)
    assert "is this a merlin detector's data port?" in widget.status.value
    assert "Traceback" not in widget.status.value
    assert "stopped" in live.message.value and live.layer is None
