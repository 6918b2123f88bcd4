"""Autosave: atomic writes keep the previous session readable whatever happens mid-save."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from napari_emcal.dose import DoseTable
from napari_emcal.dose.autosave import Autosave, atomic_write_text, default_autosave_path
from napari_emcal.errors import InvalidDataError


def small_table(rows=1):
    table = DoseTable(budget=50.0)
    for i in range(rows):
        table.add(
            image=f"img {i}",
            time=f"2026-11-20T10:{i // 60:02d}:{i % 60:02d}",
            mode="TEM",
            current_pa=100.0 + i,
            illuminated_diameter_um=1.0,
            exposure_s=1,
        )
    return table


def test_save_and_restore(tmp_path):
    autosave = Autosave(tmp_path / "session.json")
    assert not autosave.exists()
    autosave.save(small_table(3))
    restored = autosave.load()
    assert len(restored) == 3 and restored.budget == 50.0
    autosave.discard()
    assert not autosave.exists() and autosave.backup_path.exists()  # set aside, not deleted
    assert len(Autosave(autosave.backup_path).load()) == 3


def test_crash_before_the_rename_keeps_the_previous_file(tmp_path, monkeypatch):
    autosave = Autosave(tmp_path / "session.json")
    autosave.save(small_table(1))

    def crash(*args):
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        autosave.save(small_table(5))
    monkeypatch.undo()
    assert len(autosave.load()) == 1
    assert not list(tmp_path.glob(".*.tmp"))  # the half-written file was removed


def test_killed_writer_never_leaves_a_broken_file(tmp_path):
    """SIGKILL a process that keeps saving a large session, at random moments."""
    path = tmp_path / "session.json"
    Autosave(path).save(small_table(1))
    large = tmp_path / "large.json"
    large.write_text(DoseTable.from_frame(small_table(1).rows.loc[[0] * 2000]).to_json())
    writer = (
        "import sys\n"
        "from napari_emcal.dose.autosave import atomic_write_text\n"
        "text = open(sys.argv[2]).read()\n"
        "print('ready', flush=True)\n"
        "while True:\n"
        "    atomic_write_text(sys.argv[1], text)\n"
    )
    for delay in (0.0, 0.013, 0.037, 0.11):
        process = subprocess.Popen(
            [sys.executable, "-c", writer, str(path), str(large)], stdout=subprocess.PIPE, text=True
        )
        assert process.stdout.readline().strip() == "ready"
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert len(Autosave(path).load()) in (1, 2000)


def test_atomic_write_creates_folders(tmp_path):
    target = tmp_path / "a" / "b" / "file.txt"
    atomic_write_text(target, "hello")
    assert target.read_text() == "hello"


def test_default_path_can_be_set(monkeypatch, tmp_path):
    monkeypatch.setenv("NAPARI_EMCAL_AUTOSAVE", str(tmp_path / "x.json"))
    assert default_autosave_path() == tmp_path / "x.json"
    monkeypatch.delenv("NAPARI_EMCAL_AUTOSAVE")
    assert default_autosave_path().name == "dose_table_autosave.json"


def test_one_window_per_session_and_stale_locks(tmp_path):
    from napari_emcal.dose.autosave import AutosaveFolder

    folder = AutosaveFolder(tmp_path)
    first, second = folder.new_session(), folder.new_session()
    assert first.path != second.path
    first.save(small_table(2))
    second.save(small_table(3))
    assert folder.unsaved() == []  # both held by this living process
    assert not Autosave(first.path).lock()  # nobody else takes a held session
    first.release()
    assert [s.path for s in folder.unsaved()] == [first.path]
    # a lock left by a process that died is stale: the session is offered and can be taken
    second.release()
    second.lock_path.write_text(json.dumps({"pid": 999999999, "host": socket.gethostname()}))
    assert {s.path for s in folder.unsaved()} == {first.path, second.path}
    taken = Autosave(second.path)
    assert taken.lock() and len(taken.load()) == 3


def test_another_sessions_temporary_file_is_left_alone(tmp_path):
    session = Autosave(tmp_path / "a.json")
    in_progress = tmp_path / ".a.json.xyz.tmp"  # another process writing this very moment
    in_progress.write_text("{")
    session.save(small_table(1))
    assert in_progress.exists()


def test_damaged_session_is_read_in_part(tmp_path):
    from napari_emcal.dose.autosave import read_session

    document = json.loads(small_table(3).to_json())
    del document["accumulation"]
    document["budget"] = "abc"
    document["images"][1]["exposure_s"] = "not a time"
    table, notes = read_session(json.dumps(document), "x.json")
    assert len(table) in (2, 3) and table.accumulation == "exposure" and table.budget is None
    assert any("accumulation" in n for n in notes) and any("budget" in n for n in notes)
    with pytest.raises(InvalidDataError):
        read_session("[1, 2]", "x.json")
    with pytest.raises(InvalidDataError):
        Autosave(tmp_path / "bad.json").load()
