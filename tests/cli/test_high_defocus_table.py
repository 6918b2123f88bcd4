"""``emcal high-defocus-is --table``: the SerialEM tool's high-defocus image shift goes into
the high-defocus tool's table, beside its magnification calibrations (issue 35 item 3)."""

import numpy as np
import pytest

from napari_emcal.cli import main
from napari_emcal.errors import InvalidDataError
from napari_emcal.highdefocus import HighDefocusTable
from napari_emcal.highdefocus.export import serialem_high_defocus_lines
from napari_emcal.serialem import simulate as sim


def _two_series(tmp_path, scale=1.06, rotation_deg=-3.0, defocus_um=-80.0):
    focus = sim.rotation_matrix(230.0, 12.0)
    a = np.radians(rotation_deg)
    ratio = scale * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return [
        sim.write_series(
            sim.simulate_series(m, seed=20 + k, defocus_um=defocus_um * k), tmp_path / f"{k}.mrc"
        )
        for k, m in enumerate((focus, ratio @ focus))
    ]


def test_the_result_lands_in_the_table_beside_the_magnification(tmp_path, capsys):
    paths = _two_series(tmp_path)
    table_path = tmp_path / "high_defocus.csv"
    # a magnification calibration of the same setting and defocus is there already
    table = HighDefocusTable()
    table.add(
        -80.0,
        1.02,
        1.5,
        spot=7,
        probe="micro",
        intensity=0.5,
        near_image="n.mrc",
        far_image="f.mrc",
    )
    table.to_csv(table_path)
    argv = ["high-defocus-is", *map(str, paths), "--table", str(table_path), "--no-history"]
    assert main(argv) == 0
    assert "image-shift calibration at -80 µm added as row" in capsys.readouterr().out
    rows = HighDefocusTable.from_csv(table_path).frame
    assert len(rows) == 2  # beside it, not replacing it
    (shift,) = rows[rows["calibration"] == "image shift"].itertuples()
    assert abs(shift.scale - 1.06) < 0.002 and abs(shift.rotation_deg + 3.0) < 0.1
    assert shift.defocus_um == pytest.approx(-80.0)
    assert (shift.spot, shift.probe) == (7, "micro") and np.isfinite(shift.intensity)
    assert shift.near_image == str(paths[0]) and shift.far_image == str(paths[1])
    assert shift.source.startswith("SerialEM high-defocus image shift: ")
    assert "1.mrc (Defocus -80 µm) against" in shift.source
    (magnification,) = rows[rows["calibration"] == "magnification"].itertuples()
    assert (magnification.scale, magnification.source) == (1.02, "")

    table = HighDefocusTable.from_csv(table_path)
    # a lookup uses one calibration at a time: the magnification unless asked
    assert table.interpolate(-80.0, 0.5, 7, "micro") == pytest.approx((1.02, 1.5))
    scale, rotation = table.interpolate(-80.0, None, 7, "micro", calibration="image shift")
    assert (scale, rotation) == pytest.approx((shift.scale, shift.rotation_deg))
    # the magnification export never writes the image-shift row as a HighFocusMagCal
    lines, skipped = serialem_high_defocus_lines(table)
    assert len(lines) == 1 and " 1.020000 1.500000 " in lines[0]
    assert any("image shift calibration, not a HighFocusMagCal" in s for s in skipped)

    # measured again: the image-shift row is replaced, the magnification row kept
    assert main(argv) == 0
    assert "replaced the calibration at -80 µm" in capsys.readouterr().out
    assert len(HighDefocusTable.from_csv(table_path)) == 2


def test_a_table_is_made_and_a_bad_one_refused(tmp_path, capsys):
    paths = _two_series(tmp_path, scale=1.1, rotation_deg=5.0, defocus_um=-150.0)
    made = tmp_path / "new.csv"
    assert main(["high-defocus-is", *map(str, paths), "--table", str(made), "--no-history"]) == 0
    (row,) = HighDefocusTable.from_csv(made).frame.itertuples()
    assert row.calibration == "image shift" and abs(row.scale - 1.1) < 0.002
    assert abs(row.rotation_deg - 5.0) < 0.1
    capsys.readouterr()
    bad = tmp_path / "bad.csv"
    bad.write_text("pixel_size_nm\n0.1\n")
    before = bad.read_bytes()
    argv = ["high-defocus-is", *map(str, paths), "--table", str(bad), "--no-history"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "unknown column(s) pixel_size_nm" in err
    assert bad.read_bytes() == before
    with pytest.raises(InvalidDataError):
        HighDefocusTable().interpolate(-80.0, calibration="image shift")


def test_an_unknown_calibration_kind_is_refused(tmp_path):
    from napari_emcal.errors import InvalidParameterError

    table = HighDefocusTable()
    with pytest.raises(InvalidParameterError, match="calibration must be"):
        table.add(-80.0, 1.02, 1.5, calibration="beam tilt")
    path = tmp_path / "t.csv"
    path.write_text("calibration,defocus_um,scale,rotation_deg\n=1+2,-80,1.02,1.5\n")
    with pytest.raises(InvalidDataError, match="calibration must be"):
        HighDefocusTable.from_csv(path)
