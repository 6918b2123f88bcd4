"""DoseTable: conditions changing across rows, both accumulation modes, per-row flags, files."""

import warnings

import numpy as np
import pandas as pd
import pytest

from napari_emcal.dose import CurrentCalibration, DoseTable
from napari_emcal.errors import IncompleteDataWarning, InvalidDataError, InvalidParameterError

TEM_1NA_1UM = 79.46936  # e/Å²/s, the worked example
T0 = pd.Timestamp("2026-11-20T10:00:00")


def at(seconds):
    return (T0 + pd.Timedelta(seconds=seconds)).isoformat()


@pytest.fixture
def calibration():
    c = CurrentCalibration()
    c.add(300, 5, 1000, aperture_um=70)
    c.add(300, 7, 250, aperture_um=70)
    return c


@pytest.fixture
def tem_series(calibration):
    """Spot size and exposure change during a TEM series; currents from the calibration."""
    table = DoseTable(calibration)
    common = dict(mode="TEM", voltage_kv=300, aperture_um=70, illuminated_diameter_um=1.0)
    table.add(image="c", time=at(20), spot=7, exposure_s=4, **common)
    table.add(image="a", time=at(0), spot=5, exposure_s=1, **common)
    table.add(image="b", time=at(10), spot=7, exposure_s=1, **common)
    return table


def test_changing_spot_and_exposure(tem_series):
    frame = tem_series.frame
    assert list(frame.image) == ["a", "b", "c"]  # time order
    assert list(frame.elapsed_s) == [0, 10, 20]
    assert list(frame.current_used_pa) == [1000, 250, 250]
    assert frame.flux_e_A2_s.tolist() == pytest.approx(
        [TEM_1NA_1UM, TEM_1NA_1UM / 4, TEM_1NA_1UM / 4], rel=1e-6
    )
    assert frame.dose_e_A2.tolist() == pytest.approx(
        [TEM_1NA_1UM, TEM_1NA_1UM / 4, TEM_1NA_1UM], rel=1e-6
    )
    assert (frame.problems == "").all()
    assert frame.current_from.str.startswith("calibration").all()


def test_exposure_accumulation(tem_series):
    frame = tem_series.frame
    assert frame.cumulative_e_A2.tolist() == pytest.approx(
        [TEM_1NA_1UM, 1.25 * TEM_1NA_1UM, 2.25 * TEM_1NA_1UM], rel=1e-6
    )


def test_wall_clock_accumulation(tem_series):
    tem_series.accumulation = "wall_clock"
    frame = tem_series.frame
    flux = TEM_1NA_1UM
    # a: own dose; b: a's flux for 10 s + own; c: + b's flux for 10 s + own (4 s at flux/4)
    expected = [flux, 10 * flux + flux / 4, 10 * flux + 10 * flux / 4 + flux]
    assert frame.cumulative_e_A2.tolist() == pytest.approx(expected, rel=1e-6)


def test_stem_magnification_change():
    table = DoseTable()
    scan = dict(mode="STEM", current_pa=50, shape_y=512, shape_x=512, dwell_us=10)
    table.add(image="low mag", time=at(0), pixel_size_nm=50 / 512, **scan)
    table.add(image="2x mag", time=at(5), pixel_size_nm=25 / 512, **scan)
    frame = table.frame
    assert frame.flux_e_A2_s.tolist() == pytest.approx([1248.3, 4 * 1248.3], abs=0.2)
    assert frame.dose_e_A2.tolist() == pytest.approx([3272.3, 4 * 3272.3], abs=0.5)
    assert frame.probe_dose_e_A2.tolist() == pytest.approx([3272.3, 4 * 3272.3], abs=0.5)
    assert frame.cumulative_e_A2.tolist() == pytest.approx([3272.3, 5 * 3272.3], abs=0.5)


def test_stem_frame_time_given_directly():
    table = DoseTable()
    table.add(
        image="x",
        time=at(0),
        mode="STEM",
        current_pa=50,
        shape_y=512,
        shape_x=512,
        pixel_size_nm=50 / 512,
        frame_time_s=2.62144,
    )
    row = table.frame.iloc[0]
    assert row.dose_e_A2 == pytest.approx(3272.3, abs=0.05)
    assert row.probe_dose_e_A2 == pytest.approx(3272.3, abs=0.05)  # dwell = frame / positions


def test_flux_from_camera_counts():
    table = DoseTable()
    table.add(
        image="bare beam",
        time=at(0),
        mode="TEM",
        counts_per_pixel_per_s=2000,
        counts_per_electron=4,
        pixel_size_nm=0.1,
        exposure_s=2,
    )
    row = table.frame.iloc[0]
    assert row.flux_e_A2_s == pytest.approx(500) and row.dose_e_A2 == pytest.approx(1000)
    assert row.problems == "" and row.current_from == "camera counts"


def test_invalid_rows_flagged_not_raised(calibration):
    table = DoseTable(calibration, budget=100)
    tem = dict(mode="TEM", exposure_s=1, illuminated_diameter_um=1.0)
    table.add(image="good", time=at(0), current_pa=1000, **tem)
    table.add(image="negative", time=at(1), current_pa=-5, **tem)
    table.add(
        image="zero area",
        time=at(2),
        current_pa=1000,
        mode="TEM",
        exposure_s=1,
        illuminated_diameter_um=0,
    )
    table.add(image="no time", current_pa=1000, **tem)
    table.add(image="bad time", time="yesterday-ish", current_pa=1000, **tem)
    table.add(image="no current", time=at(3), voltage_kv=300, spot=9, aperture_um=70, **tem)
    table.add(image="no mode", time=at(4), current_pa=1000)
    table.add(
        image="no dwell",
        time=at(5),
        mode="STEM",
        current_pa=50,
        pixel_size_nm=0.1,
        shape_y=64,
        shape_x=64,
    )
    table.add(image="good 2", time=at(6), current_pa=1000, **tem)
    frame = table.frame.set_index("image")
    problems = frame.problems
    assert problems["good"] == "" and problems["good 2"] == ""
    assert "negative current (-5 pA)" in problems["negative"]
    assert "illuminated area is zero" in problems["zero area"]
    assert "time missing" in problems["no time"]
    assert "'yesterday-ish' not understood" in problems["bad time"]
    assert "current unknown (spot 9 is outside the calibrated spots 5-7" in problems["no current"]
    assert "mode unknown" in problems["no mode"]
    assert "dwell time or frame time missing" in problems["no dwell"]
    # the good rows are computed as usual; the flagged ones are not counted
    assert frame.loc["good", "dose_e_A2"] == pytest.approx(TEM_1NA_1UM, rel=1e-6)
    assert np.isnan(frame.loc["negative", "dose_e_A2"])
    assert frame.loc["no time", "dose_e_A2"] == pytest.approx(TEM_1NA_1UM, rel=1e-6)
    assert np.isnan(frame.loc["no time", "cumulative_e_A2"])
    assert frame.loc["good 2", "cumulative_e_A2"] == pytest.approx(2 * TEM_1NA_1UM, rel=1e-6)
    assert frame.loc["good 2", "cumulative_lower_bound"]  # uncounted rows before it
    assert not frame.loc["good", "cumulative_lower_bound"]
    assert frame.loc["good 2", "over_budget"] and not frame.loc["good", "over_budget"]
    assert len(frame) == 9  # nothing dropped
    summary = table.summary()
    assert (
        summary.startswith("9 image(s), cumulative") and "(at least: some doses unknown)" in summary
    )
    assert "budget 100 e⁻/Å² exceeded from good 2" in summary
    assert "row(s) need attention" in summary
    assert DoseTable().summary() == "no images yet"


def test_entries_of_the_wrong_kind_are_refused():
    table = DoseTable()
    with pytest.raises(InvalidParameterError, match="current_pa must be a number"):
        table.add(image="x", current_pa="fifty")
    table.add(image="x", current_pa=5)
    with pytest.raises(InvalidParameterError, match="unknown column"):
        table.update(0, colour="red")
    with pytest.raises(InvalidParameterError, match="budget must be a positive number"):
        table.budget = -1
    with pytest.raises(InvalidParameterError, match="accumulation must be one of"):
        table.accumulation = "forever"
    assert table.rows.loc[0, "current_pa"] == 5


def _full_table(calibration):
    table = DoseTable(calibration, accumulation="wall_clock", budget=123.0)
    table.add(
        image="a, with comma",
        time=at(0),
        mode="TEM",
        voltage_kv=300,
        spot=5,
        aperture_um=70,
        illuminated_diameter_um=1.0,
        exposure_s=1,
        probe="micro",
        source="/data/a.tif",
    )
    table.add(
        image="b",
        time=at(30),
        mode="STEM",
        current_pa=50,
        pixel_size_nm=0.1,
        shape_y=512,
        shape_x=256,
        dwell_us=2,
        flyback_us=100,
        magnification=2e6,
    )
    table.add(image="c (flagged)", current_pa=-1, mode="TEM")
    return table


def test_csv_round_trip_loses_nothing(calibration, tmp_path):
    table = _full_table(calibration)
    path = tmp_path / "dose.csv"
    table.to_csv(path)
    back = DoseTable.from_csv(
        path, calibration=calibration, accumulation="wall_clock", budget=123.0
    )
    pd.testing.assert_frame_equal(back.rows, table.rows)
    pd.testing.assert_frame_equal(back.frame, table.frame)


def test_excel_round_trip_loses_nothing(calibration, tmp_path):
    table = _full_table(calibration)
    path = tmp_path / "dose.xlsx"
    table.to_excel(path)
    back = DoseTable.from_excel(path)
    pd.testing.assert_frame_equal(back.rows, table.rows)
    pd.testing.assert_frame_equal(back.calibration.frame, calibration.frame)
    assert back.accumulation == "wall_clock" and back.budget == 123.0
    pd.testing.assert_frame_equal(back.frame, table.frame)


def test_session_json_round_trip(calibration):
    table = _full_table(calibration)
    back = DoseTable.from_json(table.to_json())
    pd.testing.assert_frame_equal(back.rows, table.rows)
    pd.testing.assert_frame_equal(back.calibration.frame, calibration.frame)
    assert (back.accumulation, back.budget) == ("wall_clock", 123.0)
    with pytest.raises(InvalidDataError, match="not a dose table session"):
        DoseTable.from_json('{"format": "something else"}')


def test_csv_import_names_unknown_and_missing_columns(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("image,current_pa,colour\na,5,red\n")
    with pytest.raises(InvalidDataError, match="unknown column.*colour"):
        DoseTable.from_csv(path)
    path.write_text("current_pa\n5\n")
    with pytest.raises(InvalidDataError, match="missing column.*image"):
        DoseTable.from_csv(path)
    path.write_text("image,current_pa,mode\na,5,TEM\n")
    with pytest.warns(IncompleteDataWarning, match="no column.*time.*exposure_s"):
        table = DoseTable.from_csv(path)
    assert len(table) == 1
    path.write_text("image,current_pa\na,lots\n")
    with pytest.raises(InvalidDataError, match="line 2: current_pa must be a number"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", IncompleteDataWarning)
            DoseTable.from_csv(path)


def test_times_with_and_without_offsets_sort_in_utc_and_never_break():
    table = DoseTable()
    table.add(
        image="zoned",
        time="2026-01-01T10:00:00+02:00",
        mode="TEM",
        exposure_s=1.0,
        recorded_dose_e_A2=1.0,
    )  # 08:00 UTC
    table.add(
        image="utc",
        time="2026-01-01T09:30:00+00:00",
        mode="TEM",
        exposure_s=1.0,
        recorded_dose_e_A2=1.0,
    )
    table.add(
        image="naive",
        time="2026-01-01T09:00:00",
        mode="TEM",
        exposure_s=1.0,
        recorded_dose_e_A2=1.0,
    )  # the instrument's local time, offset unknown: compared as written, and said once
    frame = table.frame
    assert list(frame["image"]) == ["zoned", "naive", "utc"]
    assert list(frame["elapsed_s"]) == [0.0, 3600.0, 5400.0]
    assert (frame["problems"] == "").all()  # no flag on the row (issue 31)
    (note,) = table.notes()
    assert "naive: 1 time(s) without a UTC offset" in note and "set the" in note
    table.utc_offset = "+01:00"  # the session setting: 09:00 local is 08:00 UTC
    frame = table.frame
    assert list(frame["image"]) == ["zoned", "naive", "utc"]
    assert list(frame["elapsed_s"]) == [0.0, 0.0, 5400.0]
    assert "taken as UTC+01:00" in table.notes()[0]
    table.utc_offset = "-05:00"  # 14:00 UTC: now last
    assert list(table.frame["image"]) == ["zoned", "utc", "naive"]
    table.add(image="later", time="2026-01-01T11:00:00+00:00", mode="TEM", exposure_s=1.0)
    assert len(table.frame) == 4  # adding after a mix still works


def test_one_note_per_file_for_times_without_offset():
    table = DoseTable()
    for source, n in (("/data/a.mdoc", 30), ("/data/b.emd", 27)):
        for k in range(n):
            table.add(
                image=f"{source} {k}",
                time=f"2026-01-01T10:{k:02d}:00",
                mode="TEM",
                recorded_dose_e_A2=1.0,
                source=source,
            )
    assert (table.frame["problems"] == "").all()
    notes = table.notes()
    assert len(notes) == 2 and notes[0].startswith("a.mdoc: 30 time(s)")
    assert table.summary().count("without a UTC offset") == 2


@pytest.mark.parametrize(
    "text, offset", [("+1", "+01:00"), ("UTC-0530", "-05:30"), ("Z", "+00:00"), ("", None)]
)
def test_utc_offsets(text, offset):
    assert DoseTable(utc_offset=text).utc_offset == offset


@pytest.mark.parametrize("text", ["+15:00", "one hour", "+01:75"])
def test_bad_utc_offsets_are_refused(text):
    with pytest.raises(InvalidParameterError, match="UTC offset"):
        DoseTable(utc_offset=text)


def test_add_checks_each_row_at_once_and_batches_them():
    table = DoseTable()
    table.add(image="a", mode="TEM", recorded_dose_e_A2=1.0)
    for bad in ("fifty", True, [1, 2], float("inf")):
        with pytest.raises(InvalidParameterError, match="current"):
            table.add(image="b", current_pa=bad)
    table.add(image="c", mode="TEM", recorded_dose_e_A2=2.0)
    assert list(table.frame.image) == ["a", "c"]


def test_a_value_that_slips_past_add_is_named_and_the_others_kept():
    table = DoseTable()
    table.add(image="a", mode="TEM")
    table._pending.append({"image": "x", "current_pa": "zz"})  # as if add() had let it by
    table.add(image="c", mode="TEM")
    with pytest.raises(InvalidParameterError, match="row 'x' not added: current_pa must be"):
        _ = table.frame
    assert list(table.frame.image) == ["a", "c"]
