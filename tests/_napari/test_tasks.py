"""The shared task runner: napari's own progress, Esc cancels, no bar when idle (issue 20)."""

import time

import pytest
from magicgui import widgets
from napari.utils import progress
from qtpy.QtCore import Qt

from napari_emcal._qt.tasks import LongTask

pytestmark = pytest.mark.gui


def test_progress_in_the_activity_dock_and_esc_cancels(qtbot):
    container = widgets.Container()
    bar = widgets.ProgressBar(value=0, min=0, max=100)
    cancel, status = widgets.PushButton(text="Cancel"), widgets.Label()
    container.extend([bar, cancel, status])
    qtbot.addWidget(container.native)
    container.native.show()
    qtbot.waitExposed(container.native)
    container.native.activateWindow()
    cancel.native.setFocus()
    task = LongTask(container.native, bar, cancel, status)
    assert not bar.visible  # idle

    def work(report):
        for i in range(2000):
            report(i / 2000)
            time.sleep(0.005)

    before = len(progress._all_instances)
    assert task.start("slow work", work, lambda value: None)
    assert bar.visible and "Esc cancels" in status.value
    assert len(progress._all_instances) == before + 1
    qtbot.wait(300)
    qtbot.keyClick(cancel.native, Qt.Key.Key_Escape)  # Esc with the focus in the widget
    qtbot.waitUntil(lambda: not task.running, timeout=10000)
    assert "cancelled" in status.value
    assert not bar.visible and len(progress._all_instances) == before
