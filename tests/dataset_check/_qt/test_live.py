"""The dataset check on a live stream: LiberTEM-live's Merlin simulator replaying a real
recording on the loopback address (issue 23)."""

import numpy as np
import pytest

from napari_emcal.dataset_check.report import check_dataset
from napari_emcal.io.readers import open_4d

pytestmark = pytest.mark.gui


def test_the_check_follows_the_frames_received(make_napari_viewer, qtbot, merlin_sim):
    data_port, control_port, header = merlin_sim
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-emcal", "4D dataset check")
    live = widget.live
    live.enabled_box.value = True
    live.data_port.value, live.control_port.value = data_port, control_port
    live.scan_shape.value = "4, 2"
    assert live.start()
    qtbot.waitUntil(lambda: not widget.task.running, timeout=60000)
    qtbot.waitUntil(lambda: widget.live_updates.idle, timeout=30000)
    assert live.received == 1 and widget.layer.value.name == live.layer.name
    assert "live: checked the 4 of 4 scan rows received" in widget.status.value
    recorded = np.asarray(open_4d(header, scan_shape=(4, 2)).data)
    expected, _ = check_dataset(recorded, {})  # the CoM relative to the (moving) beam
    com_y = viewer.layers[f"{live.layer.name} · CoM y"].data
    np.testing.assert_allclose(com_y, expected.com_y, rtol=1e-9, atol=1e-9)
    assert widget.report is not None  # the report of the received scan
