"""The calibration history: stored, listed, compared, and safe with several writers."""

import json
import subprocess
import sys

import pytest

from napari_emcal.cli import main
from napari_emcal.errors import InvalidParameterError
from napari_emcal.history import History, drift_warnings


def test_record_list_and_previous(tmp_path):
    history = History(tmp_path / "h.sqlite")
    history.record("pixel_size", {"pixel_size_nm": 0.5}, {"pixel_size_nm": 0.001}, setting="m=1")
    history.record("pixel_size", {"pixel_size_nm": 0.25}, setting="m=2")
    history.record("pixel_size", {"pixel_size_nm": 0.51}, setting="m=1", source="b.tif")
    assert [e.values["pixel_size_nm"] for e in history.entries("pixel_size")] == [0.5, 0.25, 0.51]
    previous = history.previous("pixel_size", "m=1")
    assert previous.values["pixel_size_nm"] == 0.51 and previous.source == "b.tif"
    assert history.previous("overfocus") is None
    assert history.entries(since="2999-01-01") == []
    with pytest.raises(InvalidParameterError):
        history.record("colour", {"x": 1})
    with pytest.raises(InvalidParameterError):
        history.entries(since="yesterday")


def test_drift_needs_both_tolerance_and_three_sigma(tmp_path):
    history = History(tmp_path / "h.sqlite")
    sigma = {"scan_rotation_deg": 0.05}
    history.record("overfocus", {"scan_rotation_deg": 83.0, "flip_y": True}, sigma)
    previous = history.previous("overfocus")
    tolerance = {"scan_rotation_deg": 0.5, "flip_y": 0}
    small = {"scan_rotation_deg": 83.3, "flip_y": True}
    assert drift_warnings(previous, small, {}, tolerance) == []
    moved = drift_warnings(previous, {"scan_rotation_deg": 84.2, "flip_y": True}, sigma, tolerance)
    assert len(moved) == 1 and "scan_rotation_deg moved by +1.2" in moved[0]
    # across ±180°: 179.9 -> -179.9 is a change of 0.2°, not 359.8°
    history.record("overfocus", {"scan_rotation_deg": 179.9, "flip_y": True})
    assert not drift_warnings(
        history.previous("overfocus"), {"scan_rotation_deg": -179.9, "flip_y": True}, {}, tolerance
    )
    flipped = drift_warnings(
        history.previous("overfocus"), {"scan_rotation_deg": 179.9, "flip_y": False}, {}, tolerance
    )
    assert "flip_y changed" in flipped[0]


def test_two_processes_writing_at_once_lose_no_row(tmp_path):
    path = tmp_path / "shared.sqlite"
    script = (
        "import sys\n"
        "from napari_emcal.history import History\n"
        "h = History(sys.argv[1])\n"
        "for i in range(60):\n"
        "    h.record('current', {'current_pa': float(i)}, setting=sys.argv[2])\n"
    )
    writers = [subprocess.Popen([sys.executable, "-c", script, str(path), name]) for name in "ab"]
    assert all(w.wait(timeout=120) == 0 for w in writers)
    entries = History(path).entries("current")
    assert len(entries) == 120
    for name in "ab":
        values = [e.values["current_pa"] for e in entries if e.setting == name]
        assert sorted(values) == [float(i) for i in range(60)]


def test_cli_records_and_lists(tmp_path, capsys):
    assert main(["pixel-size", "sample"]) == 0
    assert main(["pixel-size", "sample", "--no-history"]) == 0
    out = tmp_path / "history.json"
    assert main(["history", "--tool", "pixel_size", "--json", str(out)]) == 0
    entries = json.loads(out.read_text())
    assert len(entries) == 1  # --no-history kept out
    assert entries[0]["tool"] == "pixel_size" and entries[0]["setting"] == "magnification=3600"
    assert entries[0]["values"]["pixel_size_nm"] == pytest.approx(4.137, rel=1e-3)
    assert entries[0]["uncertainty"]["pixel_size_nm"] > 0
    assert main(["history", "--since", "tomorrow"]) == 2


def test_compare_reads_and_keep_records(tmp_path):
    from napari_emcal.history import magnification_setting

    history = History(tmp_path / "h.sqlite")
    setting = magnification_setting(5000)
    assert setting == "magnification=5000" and magnification_setting(None) == ""
    history.record("pixel_size", {"pixel_size_nm": 1.0, "angle_deg": 0.0}, {}, setting=setting)
    moved = {"pixel_size_nm": 1.2, "angle_deg": 0.0}
    previous, warnings = history.compare("pixel_size", moved, {}, setting)
    assert previous.values["pixel_size_nm"] == 1.0 and "pixel_size_nm moved by" in warnings[0]
    assert len(history.entries("pixel_size")) == 1  # compare records nothing
    assert history.keep("pixel_size", moved, {}, setting=setting) == (previous, warnings)
    assert len(history.entries("pixel_size")) == 2
