"""Plausible values only (issue 38 item 6): physical parameters within stated ranges at
the API boundary, the history only finite numbers and real times, conflicting
calibrations refused (never averaged), header/data mismatches refused, a dataset too
small for an analysis not rated suitable."""

import math
import re

import numpy as np
import pytest

from napari_emcal._checks import PLAUSIBLE, plausible, rotation_deg
from napari_emcal.cli import main
from napari_emcal.dataset_check.report import check_dataset
from napari_emcal.dose import CurrentCalibration
from napari_emcal.errors import InvalidDataError, InvalidParameterError
from napari_emcal.grating import find_pixel_size, lattice_image
from napari_emcal.highdefocus import HighDefocusTable
from napari_emcal.history import History
from napari_emcal.io.readers import open_4d
from napari_emcal.overfocus import TwinParams
from tests.conftest import real_file
from tests.merlin_files import write_merlin

TWIN = dict(
    overfocus=1e-6, scan_pixel_size=1e-9, camera_length=0.15, detector_pixel_size=55e-6,
    cy=8.0, cx=8.0,
)  # fmt: skip


def _one_line_exit_2(argv, capsys, match):
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unexpected" not in err and re.search(match, err), err


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"overfocus": 1e-300}, "overfocus"),
        ({"overfocus": 5.0}, "overfocus"),  # 5 µm typed as metres
        ({"scan_pixel_size": 0.5}, "scan_pixel_size"),  # 0.5 nm typed as metres
        ({"camera_length": 1e-9}, "camera"),
        ({"detector_pixel_size": 55.0}, "detector_pixel_size"),
        ({"scan_rotation": math.inf}, "finite"),
        ({"scan_rotation": 1e308}, "ten turns"),
    ],
)
def test_twin_parameters_out_of_range(changes, match):
    with pytest.raises(InvalidParameterError, match=match):
        TwinParams(**{**TWIN, **changes})


def test_rotation_is_wrapped():
    assert TwinParams(**TWIN, scan_rotation=370.0).scan_rotation == pytest.approx(10.0)
    assert TwinParams(**TWIN, scan_rotation=-180.0).scan_rotation == 180.0
    assert rotation_deg(-190.0) == pytest.approx(170.0)


def test_every_range_is_stated_and_enforced():
    for name, (low, high, _) in PLAUSIBLE.items():
        assert 0 < low < high
        assert plausible(name, low) == low and plausible(name, -high) == -high
        for bad in (low / 10, high * 10, math.nan, math.inf):
            with pytest.raises(InvalidParameterError):
                plausible(name, bad)


def test_specimen_period_and_beam_diameter(capsys):
    image = lattice_image((256, 256), spacing_px=20.0, angle_deg=5.0, dose=50, seed=1)
    with pytest.raises(InvalidParameterError, match="plausible range"):
        find_pixel_size(image, mode="lattice", spacing_nm=1e300)
    _one_line_exit_2(
        ["pixel-size", "sample", "--spacing-nm", "1e300", "--no-history"], capsys, "plausible"
    )
    mdoc = real_file("images/serialem_mdoc/tilt_series.mdoc")
    _one_line_exit_2(
        ["dose", mdoc, "--current-pa", "50", "--beam-diameter-um", "1e-300"], capsys, "plausible"
    )


@pytest.mark.parametrize(
    "values, time",
    [
        ({"overfocus": math.nan}, None),
        ({"overfocus": math.inf}, None),
        ({"overfocus": "1e-6"}, None),
        ({"overfocus": 1e-6}, "not a time"),
    ],
)
def test_history_takes_finite_numbers_and_real_times(values, time, tmp_path):
    history = History(tmp_path / "h.sqlite")
    with pytest.raises(InvalidParameterError):
        history.record("overfocus", values, time=time)
    assert history.entries() == []
    history.record("overfocus", {"overfocus": 1e-6}, {"overfocus": None}, time="2026-11-01")
    (entry,) = history.entries()
    assert entry.time.startswith("2026-11-01T00:00:00")


def test_conflicting_currents_are_not_averaged():
    calibration = CurrentCalibration()
    calibration.add(300.0, 5, 1200.0)
    calibration.add(300.0, 5, 12.0)
    lookup = calibration.lookup(300.0, 5)
    assert lookup.current_pa is None and "conflicting" in lookup.message
    calibration.add(300.0, 7, 50.0)
    assert calibration.lookup(300.0, 6).current_pa is None  # interpolating from it neither
    repeated = CurrentCalibration()
    repeated.add(300.0, 5, 100.0)
    repeated.add(300.0, 5, 104.0)  # repeated measurements that agree: their mean
    assert repeated.lookup(300.0, 5).current_pa == pytest.approx(math.sqrt(100 * 104))


def test_two_high_defocus_rows_at_one_setting_are_not_averaged(tmp_path):
    path = tmp_path / "hd.csv"
    path.write_text(
        "defocus_um,scale,rotation_deg,spot,probe\n-100,1.04,2.0,5,micro\n-100,1.20,9.0,5,micro\n"
    )
    table = HighDefocusTable.from_csv(path)
    with pytest.raises(InvalidDataError, match="different calibrations"):
        table.interpolate(-100.0, spot=5, probe="micro")


@pytest.fixture
def merlin_template():
    return real_file("4d/merlin_4x2/001_4x2_6bit.hdr")


def test_merlin_depth_mismatch_is_refused(merlin_template, tmp_path, capsys):
    frames = np.full((2, 2, 16, 16), 3000, np.uint16)  # 12-bit counts
    hdr = write_merlin(merlin_template, frames, tmp_path / "scan")
    text = re.sub(r"(Counter Depth \(number\):\s*)\d+", r"\g<1>6", hdr.read_text())
    hdr.write_text(text)
    with pytest.raises(InvalidDataError, match="6-bit counter depth"):
        open_4d(hdr)
    _one_line_exit_2(["check", hdr], capsys, "counter depth")


def test_merlin_header_saying_zero_frames_is_refused(merlin_template, tmp_path):
    hdr = write_merlin(merlin_template, np.ones((2, 2, 16, 16), np.uint8), tmp_path / "scan")
    text = re.sub(r"(Frames in Acquisition \(Number\):\s*)\d+", r"\g<1>0", hdr.read_text())
    hdr.write_text(text)
    with pytest.raises(InvalidDataError, match="0 frames"):
        open_4d(hdr)


def test_a_one_position_scan_is_not_suitable():
    y, x = np.mgrid[:32, :32]
    frame = (((y - 16) ** 2 + (x - 16) ** 2) < 64).astype(np.uint16) * 100
    _, report = check_dataset(frame[None, None])
    assert report.scan_shape == (1, 1)
    assert {v[0] for v in report.verdicts.values()} == {"not suitable"}
    assert all("too small" in " ".join(v[1]) for v in report.verdicts.values())
    with pytest.raises(InvalidParameterError, match="finite"):
        check_dataset(np.broadcast_to(frame, (4, 4, 32, 32)), scan_rotation=math.inf)


def test_check_with_a_missing_twin_is_an_error(tmp_path, capsys):
    _one_line_exit_2(["check", "sample", "--twin", tmp_path / "missing.json"], capsys, "No such")


def test_a_negative_mag_index_is_refused(tmp_path, capsys):
    table = tmp_path / "t.csv"
    table.write_text("magnification,pixel_size_nm,angle_deg\n25000,0.5,1.0\n")
    for pair in ("25000=-1", "25000=0", "25000=1000"):
        _one_line_exit_2(
            ["export", "serialem-pixel", table, "--mag-index", pair], capsys, "mag index"
        )


def test_scan_shape_text_gives_a_project_exception(tmp_path):
    np.save(tmp_path / "x.npy", np.ones((16, 8, 8), np.float32))
    assert open_4d(tmp_path / "x.npy", scan_shape="4x4").data.shape == (4, 4, 8, 8)
    with pytest.raises(InvalidDataError, match="Cannot arrange"):
        open_4d(tmp_path / "x.npy", scan_shape="16x16")
    for bad in ("abc", (0, 16), (1.5, 2)):
        with pytest.raises(InvalidParameterError, match="scan_shape"):
            open_4d(tmp_path / "x.npy", scan_shape=bad)
