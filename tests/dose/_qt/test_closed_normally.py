"""A dose-table window closed normally is not offered at the next start as unsaved work
from a window that "closed or crashed"; its table is kept aside, and a crash still is."""

import json
import socket

import pytest

from napari_emcal.dose import DoseTable
from napari_emcal.dose.autosave import AutosaveFolder, default_autosave_path

pytestmark = pytest.mark.gui


def test_a_window_closed_normally_is_not_offered_next_time(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-emcal", "in_situ_series")
    _, widget = viewer.window.add_plugin_dock_widget("napari-emcal", "Dose table")
    widget.add_layers([viewer.layers[0]])
    saved = widget.autosave.path
    assert saved.is_file()
    viewer.close()  # the window closes normally
    qtbot.waitUntil(lambda: not saved.exists(), timeout=5000)
    kept = default_autosave_path().parent / "closed" / saved.name
    assert kept.is_file() and not widget.autosave.lock_path.exists()

    again = make_napari_viewer()
    _, restarted = again.window.add_plugin_dock_widget("napari-emcal", "Dose table")
    assert not restarted.restore_offer.pending


def test_an_empty_window_leaves_nothing_behind(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-emcal", "Dose table")
    widget.refresh()  # an autosave of the empty table
    path = widget.autosave.path
    viewer.close()
    qtbot.waitUntil(lambda: not widget.autosave.lock_path.exists(), timeout=5000)
    assert not path.exists()
    assert not (default_autosave_path().parent / "closed" / path.name).exists()


def test_a_crashed_window_is_still_offered(tmp_path):
    folder = AutosaveFolder(tmp_path)
    crashed = folder.new_session()
    table = DoseTable()
    crashed.save(table)
    # the process died: its lock names a process that no longer exists
    crashed.lock_path.write_text(json.dumps({"pid": 999999999, "host": socket.gethostname()}))
    crashed._locked = False
    assert [s.path for s in folder.unsaved()] == [crashed.path]
    closed = folder.new_session()
    closed.save(table)
    folder.close_normally(closed)
    assert [s.path for s in folder.unsaved()] == [crashed.path]


def test_two_crashed_windows_alike_are_both_offered(make_napari_viewer, qtbot):
    """Two windows that crashed in the same minute with the same rows: a new dock opens,
    offers both (one entry each, a choice box keeps one entry per label) and restores the
    one chosen."""
    import json
    import socket

    import numpy as np

    crashed = []
    for _ in range(2):
        viewer = make_napari_viewer()
        layer = viewer.add_image(np.zeros((8, 8)), name="still")
        _, widget = viewer.window.add_plugin_dock_widget("napari-emcal", "Dose table")
        widget.add_layers([layer])
        qtbot.waitUntil(lambda w=widget: w.autosave.path.exists())
        # the window crashes: its lock stays, held by a process that no longer exists
        widget.autosave.lock_path.write_text(
            json.dumps({"pid": 999999999, "host": socket.gethostname()})
        )
        widget.autosave._locked = False
        crashed.append(widget.autosave.path)
    _, restarted = make_napari_viewer().window.add_plugin_dock_widget("napari-emcal", "Dose table")
    offer = restarted.restore_offer
    assert offer.pending and len(offer.choice.choices) == 2
    offer.choice.value = 1
    offer.restore()
    assert restarted.autosave.path in crashed and len(restarted.table) == 1
