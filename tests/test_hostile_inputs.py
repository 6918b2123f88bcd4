"""Hostile and careless inputs (issue 38 items 4, 5 and 7): each is refused with one line
and exit status 2, quickly, without reading outside the dataset's folder and without
changing the input. The files come from ``tests/hostile_files.py``."""

import hashlib
import time
from pathlib import Path

import pytest

from napari_emcal.cli import main
from napari_emcal.errors import InvalidDataError
from napari_emcal.io.readers import open_4d
from tests import hostile_files as hostile


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def _refused(argv, capsys, *, match, inputs=()):
    """Run the CLI: exit 2, one line on stderr naming ``match``, inputs unchanged, fast."""
    before = [_digest(p) for p in inputs]
    start = time.perf_counter()
    code = main([str(a) for a in argv])
    elapsed = time.perf_counter() - start
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "unexpected" not in err, err
    assert match in err, err
    assert elapsed < 20
    assert [_digest(p) for p in inputs] == before


# -- item 4: reads confined to the dataset's folder -------------------------------------------
def _outside_cases(folder):
    raw = hostile.outside_file(folder)
    return {
        "external storage elsewhere": hostile.h5_external_storage(folder, str(raw), "a.h5"),
        "external storage /etc/passwd": hostile.h5_external_storage(folder, "/etc/passwd", "b.h5"),
        "external storage /dev/zero": hostile.h5_external_storage(folder, "/dev/zero", "c.h5"),
        "external storage ../": hostile.h5_external_storage(
            folder, f"../{raw.parent.name}/{raw.name}", "d.h5"
        ),
        "virtual dataset": hostile.h5_virtual(folder, raw.parent / "source.h5"),
        "ARINA absolute link": hostile.arina_master_linking(folder, str(raw.parent / "source.h5")),
        "EMPAD ../": hostile.empad_xml(folder, f"../{raw.parent.name}/{raw.name}", name="u.xml"),
        "EMPAD absolute": hostile.empad_xml(folder, str(raw), name="v.xml"),
        "EMPAD /dev/zero": hostile.empad_xml(folder, "/dev/zero", name="w.xml"),
    }


CASES = (
    "external storage elsewhere",
    "external storage /etc/passwd",
    "external storage /dev/zero",
    "external storage ../",
    "virtual dataset",
    "ARINA absolute link",
    "EMPAD ../",
    "EMPAD absolute",
    "EMPAD /dev/zero",
)


@pytest.mark.parametrize("case", CASES)
def test_reads_stay_in_the_dataset_folder(case, tmp_path, capsys):
    folder = tmp_path / "dataset"
    folder.mkdir()
    path = _outside_cases(folder)[case]
    with pytest.raises(InvalidDataError, match="outside the dataset's folder"):
        open_4d(path)
    _refused(["check", path], capsys, match="outside the dataset's folder", inputs=[path])
    out = tmp_path / "x.hspy"
    _refused(["export", "hspy", path, "--out", out], capsys, match="outside", inputs=[path])
    assert not out.exists()  # nothing of the other folder's bytes lands in an export


def test_external_storage_inside_the_folder_is_read_relative_to_it(tmp_path, monkeypatch):
    import numpy as np

    folder = tmp_path / "dataset"
    folder.mkdir()
    frames = np.arange(4 * 4 * 8 * 8, dtype=np.float32)
    frames.tofile(folder / "frames.raw")
    path = hostile.h5_external_storage(folder, "frames.raw")
    monkeypatch.chdir(tmp_path)  # not the dataset's folder
    data = open_4d(path).data
    assert np.array_equal(np.asarray(data).ravel(), frames)


# -- a folder the user names -----------------------------------------------------------------
def _sibling_storage(tmp_path):
    """A dataset whose external raw storage is in a sibling folder; (file, that folder)."""
    folder = tmp_path / "dataset"
    folder.mkdir()
    raw = hostile.outside_file(folder)
    return hostile.h5_external_storage(folder, str(raw)), raw


def test_external_storage_in_a_named_folder_is_read(tmp_path, capsys):
    import numpy as np

    path, raw = _sibling_storage(tmp_path)
    with pytest.raises(InvalidDataError, match="outside the dataset's folder"):
        open_4d(path)
    data = open_4d(path, allow_dirs=[raw.parent]).data
    assert np.array_equal(np.asarray(data).ravel(), np.fromfile(raw, np.float32))
    # a relative link reaching there is accepted too; a folder not named is still refused
    up = hostile.h5_external_storage(path.parent, f"../{raw.parent.name}/{raw.name}", "up.h5")
    assert open_4d(up, allow_dirs=raw.parent).data.shape == (4, 4, 8, 8)
    other = tmp_path / "other"
    other.mkdir()
    with pytest.raises(InvalidDataError, match=r"and the folders named \("):
        open_4d(path, allow_dirs=[other])

    _refused(["check", path], capsys, match="--allow-dir DIR", inputs=[path])
    code = main(["check", str(path), "--allow-dir", str(other), "--allow-dir", str(raw.parent)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    out = tmp_path / "x.hspy"
    assert (
        main(["export", "hspy", str(path), "--out", str(out), "--allow-dir", str(raw.parent)]) == 0
    )
    assert out.is_file()
    assert main(["info", str(path), "--allow-dir", str(raw.parent)]) == 0
    capsys.readouterr()


def test_a_named_folder_never_lets_a_device_through(tmp_path, capsys):
    folder = tmp_path / "dataset"
    folder.mkdir()
    path = hostile.h5_external_storage(folder, "/dev/zero")
    with pytest.raises(InvalidDataError, match="not a regular file"):
        open_4d(path, allow_dirs=["/dev"])
    _refused(["check", path, "--allow-dir", "/dev"], capsys, match="not a regular file")
    xml = hostile.empad_xml(folder, "/dev/zero", name="w.xml")
    _refused(["check", xml, "--allow-dir", "/dev"], capsys, match="not a regular file")


def test_a_named_folder_must_exist(tmp_path, capsys):
    from napari_emcal.errors import InvalidParameterError

    path, _ = _sibling_storage(tmp_path)
    with pytest.raises(InvalidParameterError, match="is not a folder"):
        open_4d(path, allow_dirs=[tmp_path / "missing"])
    _refused(["check", path, "--allow-dir", tmp_path / "missing"], capsys, match="not a folder")


def test_the_napari_reader_reads_from_the_data_folders_setting(tmp_path, monkeypatch):
    from napari_emcal._napari.contributions import read_4d
    from napari_emcal.settings import save_setting

    monkeypatch.setenv("NAPARI_EMCAL_SETTINGS", str(tmp_path / "settings.json"))
    path, raw = _sibling_storage(tmp_path)
    with pytest.raises(InvalidDataError, match="data_folders"):
        read_4d(str(path))
    save_setting("data_folders", [str(raw.parent)])
    ((data, _, _),) = read_4d(str(path))
    assert data.shape == (4, 4, 8, 8)


# -- item 5: bounded memory and time; devices and FIFOs --------------------------------------
def test_impossible_hdf5_shapes_are_refused_before_a_graph(tmp_path, capsys):
    for path in (hostile.h5_huge_declared(tmp_path), hostile.h5_unallocated(tmp_path)):
        _refused(["check", path], capsys, match="declares", inputs=[path])


def test_lying_mrc_header_is_refused_at_once(tmp_path, capsys):
    path = hostile.mrc_declaring(tmp_path)
    for command in (["info"], ["pixel-size"], ["dose"]):
        _refused([*command, path], capsys, match="header declares", inputs=[path])


@pytest.mark.parametrize(
    "argv",
    [
        ["high-defocus-lookup", "{dev}", "--defocus-um", "-100"],
        ["export", "serialem-pixel", "{dev}"],
        ["export", "serialem-high-defocus", "{dev}"],
        ["export", "libertem", "{dev}"],
        ["export", "motioncor2", "{dev}"],
        ["overfocus", "sample", "--params", "{dev}"],
        ["dose", "{dev}"],
        ["info", "{dev}"],
        ["check", "{dev}"],
        ["image-shift", "{dev}"],
    ],
)
@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom", "fifo"])
def test_devices_and_fifos_are_refused_at_once(argv, device, tmp_path, capsys):
    if device == "fifo":
        device = hostile.fifo(tmp_path)
        match = "FIFO"
    else:
        match = "device"
    _refused([str(a).replace("{dev}", str(device)) for a in argv], capsys, match=match)


def test_hostile_cases_stay_under_1_gib_and_20_s(tmp_path):
    """Issue 38 item 5's cases, each once more in a fresh process (``tests/hostile_bounds.py``)
    under an address-space limit of its imports plus 1 GiB: each refused (or, the 20 000-
    section ``.mdoc``, read), with the peak resident memory under 1 GiB and at most 20 s of
    CPU each (CPU time: wall time on a shared machine measures its load; a hang is caught by
    the wall-clock timeout)."""
    import json
    import os
    import subprocess
    import sys

    import numpy as np

    from napari_emcal.dose.simulate import write_tilt_series_mdoc

    folder = tmp_path / "dataset"
    folder.mkdir()
    mdoc = write_tilt_series_mdoc(tmp_path / "big.mdoc", np.zeros(20_000), 0.01, start=None)
    dev_zero = hostile.h5_external_storage(folder, "/dev/zero", "zero.h5")
    cases = {
        "lookup /dev/zero": ["high-defocus-lookup", "/dev/zero", "--defocus-um", "-100"],
        "--params /dev/zero": ["overfocus", "sample", "--params", "/dev/zero"],
        "--calibration /dev/zero": ["dose", mdoc, "--calibration", "/dev/zero"],
        "serialem-pixel /dev/zero": ["export", "serialem-pixel", "/dev/zero"],
        "libertem /dev/urandom": ["export", "libertem", "/dev/urandom"],
        "HDF5 declaring 100000² x 256²": ["check", hostile.h5_huge_declared(folder)],
        "HDF5 never written": ["check", hostile.h5_unallocated(folder)],
        "MRC declaring 100000³": ["info", hostile.mrc_declaring(folder)],
        "external storage /dev/zero": ["check", dev_zero],
        "external storage /dev/zero, /dev named": ["check", dev_zero, "--allow-dir", "/dev"],
        "FIFO": ["high-defocus-lookup", hostile.fifo(tmp_path), "--defocus-um", "-100"],
        "20 000 sections": ["dose", mdoc],
    }
    argv = [[str(a) for a in case] for case in cases.values()]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    run = subprocess.run(
        [sys.executable, "-m", "tests.hostile_bounds", json.dumps(argv)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=Path(__file__).parents[1],
    )
    assert run.returncode == 0, run.stderr[-2000:]
    baseline, *results = json.loads(run.stdout.splitlines()[-1])
    for name, result in zip(cases, results, strict=True):
        expected = 0 if name == "20 000 sections" else 2
        err = result["stderr"].strip()
        assert result["code"] == expected, (name, err)
        if expected == 2:
            assert len(err.splitlines()) == 1 and "unexpected" not in err, (name, err)
        assert result["cpu_seconds"] < 20, (name, result["cpu_seconds"])
        assert result["peak_bytes"] < 2**30, (name, result["peak_bytes"], baseline)


def test_text_inputs_are_size_limited(tmp_path):
    import napari_emcal._files as files

    big = tmp_path / "big.csv"
    big.write_text("pixel_size_nm\n" + "1\n" * 2000)
    with pytest.raises(InvalidDataError, match="larger than any"):
        files.read_text_limited(big, limit=1000, what="CSV table")


# -- item 7: clean messages where there were "please report it" errors ----------------------
def test_zero_size_mrc(tmp_path, capsys):
    path = hostile.empty_file(tmp_path)
    _refused(["info", path], capsys, match="empty", inputs=[path])


@pytest.mark.parametrize(
    "maker, match",
    [(hostile.json_huge_integer, "digits long"), (hostile.json_deeply_nested, "nested too deeply")],
)
@pytest.mark.parametrize(
    "command", [["export", "libertem"], ["export", "py4dstem"], ["export", "motioncor2"]]
)
def test_hostile_json(maker, match, command, tmp_path, capsys):
    path = maker(tmp_path)
    _refused([*command, path], capsys, match=match, inputs=[path])
    _refused(["overfocus", "sample", "--params", path], capsys, match=match, inputs=[path])
