"""Outputs never replace inputs; every write is atomic and follows the umask (issue 38
item 3)."""

import errno
import hashlib
import os

import numpy as np
import pytest

from napari_emcal._files import atomic_write, atomic_write_text, protecting, write_csv
from napari_emcal.cli import main
from napari_emcal.errors import InvalidParameterError
from napari_emcal.overfocus import TwinParams
from tests.conftest import real_file


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def inputs(tmp_path):
    np.save(tmp_path / "F.npy", np.ones((4, 4, 16, 16), np.float32))
    TwinParams(
        overfocus=1e-6, scan_pixel_size=1e-9, camera_length=0.15, detector_pixel_size=55e-6,
        cy=8.0, cx=8.0, scan_rotation=10.0,
    ).save(tmp_path / "T.json")  # fmt: skip
    mrc = real_file("images/mrc_fei")
    source = next(mrc.glob("*.mrc"))
    (tmp_path / "D.mrc").write_bytes(source.read_bytes())
    return tmp_path


CASES = [
    ["info", "F.npy", "--json", "F.npy"],
    ["check", "F.npy", "--json", "F.npy"],
    ["info", "D.mrc", "--json", "D.mrc"],
    ["dose", "D.mrc", "--excel", "D.mrc"],
    ["dose", "D.mrc", "--csv", "D.mrc"],
    ["dose", "D.mrc", "--dose-text", "D.mrc"],
    ["export", "libertem", "T.json", "--out", "T.json"],
    ["export", "py4dstem", "T.json", "--out", "./T.json"],
    ["export", "hspy", "F.npy", "--out", "F.npy"],
    ["export", "hspy", "F.npy", "--params", "T.json", "--out", "T.json"],
    ["overfocus", "F.npy", "--params", "T.json", "--out", "."],  # writes ./params.json
]


@pytest.mark.parametrize("argv", CASES, ids=lambda a: " ".join(a))
def test_an_output_never_replaces_an_input(argv, inputs, capsys, monkeypatch):
    monkeypatch.chdir(inputs)
    if argv[0] == "overfocus":
        os.rename("T.json", "params.json")
        argv = [a.replace("T.json", "params.json") for a in argv]
    before = {p.name: _digest(p) for p in inputs.iterdir() if p.is_file()}
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "refusing to write over it" in err, err
    after = {p.name: _digest(p) for p in inputs.iterdir() if p.is_file()}
    assert {k: after.get(k) for k in before} == before


def test_a_link_to_an_input_is_the_input(inputs, capsys):
    (inputs / "L.json").symlink_to(inputs / "T.json")
    assert (
        main(["export", "libertem", str(inputs / "T.json"), "--out", str(inputs / "L.json")]) == 2
    )
    assert "refusing" in capsys.readouterr().err


def test_a_failed_write_leaves_the_previous_file_whole(tmp_path):
    path = tmp_path / "table.csv"
    path.write_text("previous\n")

    def full_disk(temporary):
        temporary.write_text("half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        atomic_write(path, full_disk)
    assert path.read_text() == "previous\n"
    assert [p.name for p in tmp_path.iterdir()] == ["table.csv"]  # no temporary left


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_permissions_follow_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "a.json", "{}")
        import pandas as pd

        write_csv(pd.DataFrame({"a": [1]}), tmp_path / "b.csv")
    finally:
        os.umask(old)
    for name in ("a.json", "b.csv"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~umask


def test_protected_inputs_and_their_companions(tmp_path):
    hdr = tmp_path / "scan.hdr"
    hdr.write_text("x")
    with protecting([hdr]):
        with pytest.raises(InvalidParameterError, match="scan.mib"):
            atomic_write_text(tmp_path / "scan.mib", "y")
        atomic_write_text(tmp_path / "scan.json", "{}")  # another file beside it is fine
    atomic_write_text(tmp_path / "scan.mib", "y")  # outside the command: allowed
