"""Tilt series and frame sets: order and cumulative dose from what SerialEM records."""

import time
import warnings

import numpy as np
import pytest

from napari_emcal.dose import DoseTable
from napari_emcal.dose.mdoc import read_mdoc
from napari_emcal.dose.metadata import rows_from_file
from napari_emcal.dose.simulate import (
    bidirectional_angles,
    dose_symmetric_angles,
    write_frame_tilt_series_mdoc,
    write_tilt_series_mdoc,
)
from napari_emcal.errors import IncompleteDataWarning, InvalidDataError
from tests.conftest import real_file

MDOCS = (
    "images/serialem_mdoc/tilt_series.mdoc",
    "images/serialem_mdoc/montage_section.mdoc",
    "images/serialem_mdoc/frame_set_single.mdoc",
)


def table_of(*paths, **settings) -> DoseTable:
    table = DoseTable(**settings)
    for path in paths:
        for row in rows_from_file(path):
            table.add(**row)
    return table


def recorded(path) -> dict[str, tuple[float, float]]:
    """(PriorRecordDose, ExposureDose) of each [ZValue] section, read here by hand."""
    found, z, values = {}, None, {}
    for line in [*path.read_text().splitlines(), "[end = 0]"]:
        if line.startswith("["):
            if z is not None and "ExposureDose" in values:
                found[z] = (
                    float(values.get("PriorRecordDose", "nan")),
                    float(values["ExposureDose"]),
                )
            z = line.split("=")[1].strip(" ]") if line.startswith("[ZValue") else None
            values = {}
        elif "=" in line:
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return found


@pytest.mark.parametrize("name", MDOCS)
def test_real_mdocs_have_unique_names_and_recorded_cumulative_doses(name):
    path = real_file(name)
    frame = table_of(path).frame
    assert frame.image.is_unique
    for z, (prior, own) in recorded(path).items():
        row = frame[frame.image == f"{path.stem} [{z}]"].iloc[0]
        if own > 0 and not np.isnan(prior):  # SerialEM wrote a dose (0 means none)
            assert row.cumulative_e_A2 == pytest.approx(prior + own, abs=1e-9)
            assert row.cumulative_from.startswith("recorded in the file")


def test_real_frame_set_alone_is_its_own_exposure():
    path = real_file("images/serialem_mdoc/frame_set_single.mdoc")
    frame = table_of(path).frame
    (row,) = frame.itertuples()
    assert row.image == "frame_set_single [frame set 0]" and row.record == "frame set"
    assert row.cumulative_e_A2 == pytest.approx(7.65892)
    assert "no tilt" in row.relation


def test_real_tilt_series_order_and_scheme_from_times():
    path = real_file("images/serialem_mdoc/tilt_series.mdoc")
    frame = table_of(path).frame
    tilts = frame[frame.record == "tilt"].sort_values("acquisition_order")
    assert list(tilts.acquisition_order) == list(range(1, 42))
    assert list(tilts.z_value) == list(range(41))  # the times agree with the ZValues
    assert tilts.tilt_angle_deg.iloc[:3].round().tolist() == [0, 3, -3]
    # every row flagged "time without a UTC offset" before (issue 31): now one note
    assert not frame.problems.str.contains("UTC").any()
    assert len(table_of(path).notes()) == 1


def test_frame_based_tilt_series_from_the_simulator(tmp_path):
    angles = dose_symmetric_angles(30, 3, group=2)
    path = write_frame_tilt_series_mdoc(
        tmp_path / "fts.mdoc", angles, frame_dose=0.64, frames_per_tilt=12, frames_between=10
    )
    table = table_of(path)
    frame = table.frame
    assert frame.image.is_unique and frame.image.iloc[0] == "fts [frame set 0]"
    tilts = frame[frame.record == "tilt"]
    assert len(tilts) == len(angles)
    for z, (prior, own) in recorded(path).items():
        row = tilts[tilts.z_value == int(z)].iloc[0]
        assert row.cumulative_e_A2 == pytest.approx(prior + own, abs=1e-9)
        assert row.acquisition_order == int(z) + 1  # no times: the ZValue order
        assert row.problems == ""  # prior doses agree with the sum of earlier tilts
    # the frame set is the whole exposure: the tilts are parts of it, not added to it
    frame_set = frame[frame.record == "frame set"].iloc[0]
    n_frames = len(angles) * 22 - 10
    assert frame_set.cumulative_e_A2 == pytest.approx(0.64 * n_frames)
    tilt_total = tilts.dose_e_A2.sum()
    assert tilt_total == pytest.approx(len(angles) * 7.68)
    between = frame_set.cumulative_e_A2 - tilt_total
    assert f"tilts {tilt_total:.4g}" in frame_set.relation
    assert f"between tilts {between:.4g}" in frame_set.relation
    assert tilts.cumulative_e_A2.max() == pytest.approx(tilt_total)  # totals agree
    assert all("of fts [frame set 0]" in r for r in tilts.relation)
    later = tilts[tilts.z_value > 0]
    assert later.cumulative_lower_bound.all() and "lower bound" in later.relation.iloc[0]
    assert "frame set" in table.summary() and "in all" in table.summary()


def test_times_and_recorded_doses_are_cross_checked(tmp_path):
    path = write_tilt_series_mdoc(tmp_path / "ts.mdoc", [0, 3, -3, -6, 6], 2.0)
    frame = table_of(path).frame
    assert (frame.problems == "").all()
    assert list(frame.cumulative_e_A2) == pytest.approx([2, 4, 6, 8, 10])
    text = path.read_text().replace("PriorRecordDose = 6", "PriorRecordDose = 9")
    path.write_text(text)
    frame = table_of(path).frame
    bad = frame[frame.z_value == 3].iloc[0]
    assert bad.cumulative_e_A2 == pytest.approx(11)  # what the file says, and flagged:
    assert "differs from the 6 e⁻/Å² of the images before it (in time order)" in bad.problems


def test_repeated_sections_are_flagged_and_not_counted_twice(tmp_path):
    path = write_tilt_series_mdoc(tmp_path / "ts.mdoc", [0, 3, -3], 2.0, start=None)
    text = path.read_text()
    repeat = text[text.index("[ZValue = 1]") : text.index("[ZValue = 2]")]
    path.write_text(text + "\n" + repeat)
    frame = table_of(path).frame
    assert frame.image.is_unique
    (row,) = frame[frame.record == "repeat"].itertuples()
    assert row.image == "ts [1] (repeat 2)" and "not counted again" in row.problems
    assert np.isnan(row.cumulative_e_A2)
    assert frame.cumulative_e_A2.max() == pytest.approx(6.0)


def test_mdoc_without_sections_is_refused(tmp_path):
    path = tmp_path / "empty.mdoc"
    path.write_text("PixelSpacing = 1.5\nVoltage = 300\n")
    with pytest.raises(InvalidDataError, match="no \\[ZValue\\] or \\[FrameSet\\] section"):
        rows_from_file(path)
    path.write_text("")
    with pytest.raises(InvalidDataError, match="empty"):
        rows_from_file(path)


def test_truncated_mdoc_is_read_with_a_warning(tmp_path):
    path = write_tilt_series_mdoc(tmp_path / "ts.mdoc", [0, 3, -3, -6], 2.0)
    text = path.read_text()
    path.write_text(text[: text.rindex("ExposureTime") + len("ExposureTi")])
    with pytest.warns(IncompleteDataWarning, match="truncated"):
        rows = rows_from_file(path)
    assert len(rows) == 4
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_mdoc(write_tilt_series_mdoc(tmp_path / "whole.mdoc", [0, 3], 2.0))


def test_twenty_thousand_sections_in_seconds(tmp_path):
    path = write_tilt_series_mdoc(tmp_path / "big.mdoc", np.zeros(20_000), 0.01, start=None)
    start = time.perf_counter()
    table = table_of(path)
    frame = table.frame
    elapsed = time.perf_counter() - start
    assert len(frame) == 20_000 and frame.cumulative_e_A2.max() == pytest.approx(200, rel=1e-3)
    assert elapsed < 60  # about 10 s on a loaded 2-core machine; was minutes


def test_adding_is_constant_time_per_row():
    def seconds_for(n):
        table = DoseTable()
        start = time.perf_counter()
        for k in range(n):
            table.add(image=f"x{k}", mode="TEM", recorded_dose_e_A2=1.0, z_value=k, series="s")
        return time.perf_counter() - start

    small, large = seconds_for(500), seconds_for(5000)
    assert large < 30 * small  # linear in all: 10x the rows, not 100x the time


def test_scheme_angle_helpers():
    assert dose_symmetric_angles(6, 3, group=1) == [0, 3, -3, 6, -6]
    assert dose_symmetric_angles(9, 3, group=2) == [0, 3, 6, -3, -6, 9, -9]
    assert bidirectional_angles(6, 3) == [0, -3, -6, 3, 6]


# -- a tilt series as a unit, and its exports read back from each tool's documented format --
from napari_emcal.dose import tomography as tomo  # noqa: E402


@pytest.fixture
def frame_series(tmp_path):
    angles = dose_symmetric_angles(30, 3, group=2)
    path = write_frame_tilt_series_mdoc(tmp_path / "fts.mdoc", angles, frame_dose=0.64)
    return path, tomo.tilt_series(table_of(path))


def read_text_columns(path) -> np.ndarray:
    lines = [line for line in path.read_text().splitlines() if not line.startswith("#")]
    return np.array([[float(v) for v in line.split()] for line in lines])


def read_star(path) -> tuple[str, dict[str, list[str]]]:
    """A STAR file's first data block and its loop (RELION's documented format: ``data_``
    names a block, ``loop_`` then ``_rlnLabel #n`` lines, then whitespace-separated rows)."""
    block, labels, rows = None, [], []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("data_"):
            block = line[5:]
        elif line.startswith("loop_"):
            continue
        elif line.startswith("_"):
            labels.append(line.split()[0][1:])
        else:
            rows.append(line.split())
    return block, {label: [r[i] for r in rows] for i, label in enumerate(labels)}


def test_tilt_series_unit_and_scheme(frame_series):
    _, tilts = frame_series
    assert list(tilts.acquisition_order) == list(range(1, 22))
    assert tomo.recognise_scheme(tilts.tilt_angle_deg) == "dose-symmetric"
    assert tilts.pre_exposure_e_A2.iloc[0] == 0
    np.testing.assert_allclose(tilts.pre_exposure_e_A2[1:], np.cumsum(tilts.dose_e_A2)[:-1])
    assert tomo.recognise_scheme(bidirectional_angles(60, 2)) == "bidirectional"
    assert tomo.recognise_scheme(np.arange(-60, 61, 3)) == "unidirectional"
    assert tomo.recognise_scheme([0, 10, 5, -3]) == "unrecognised"  # back inwards


def test_real_tilt_series_scheme():
    frame = table_of(real_file("images/serialem_mdoc/tilt_series.mdoc")).frame
    tilts = frame.sort_values("acquisition_order")
    assert tomo.recognise_scheme(tilts.tilt_angle_deg) == "dose-symmetric"
    with pytest.raises(InvalidDataError, match="have no dose"):
        tomo.tilt_series(table_of(real_file("images/serialem_mdoc/tilt_series.mdoc")))


def test_plain_text_exports_round_trip(frame_series, tmp_path):
    _, tilts = frame_series
    by_angle = read_text_columns(tomo.write_cumulative_text(tilts, tmp_path / "a.txt", "angle"))
    assert np.all(np.diff(by_angle[:, 0]) > 0)
    ordered = tilts.sort_values("tilt_angle_deg")
    np.testing.assert_allclose(by_angle[:, 0], ordered.tilt_angle_deg, atol=1e-3)
    np.testing.assert_allclose(by_angle[:, 3], ordered.cumulative_e_A2, atol=1e-4)
    np.testing.assert_allclose(by_angle[:, 1] + by_angle[:, 2], by_angle[:, 3], atol=2e-4)
    by_order = read_text_columns(
        tomo.write_cumulative_text(tilts, tmp_path / "o.txt", "acquisition")
    )
    assert list(by_order[:, 4]) == list(range(1, 22))
    np.testing.assert_allclose(by_order[:, 3], tilts.cumulative_e_A2, atol=1e-4)


def test_relion_star_round_trip(frame_series, tmp_path):
    _, tilts = frame_series
    block, loop = read_star(tomo.write_relion_tilt_series_star(tilts, tmp_path / "t.star", "fts"))
    assert block == "fts"
    assert loop["rlnMicrographMovieName"][:2] == ["1@fts.mrc", "2@fts.mrc"]
    np.testing.assert_allclose(
        np.array(loop["rlnTomoNominalStageTiltAngle"], float), tilts.tilt_angle_deg
    )
    pre = np.array(loop["rlnMicrographPreExposure"], float)
    np.testing.assert_allclose(pre, tilts.pre_exposure_e_A2, atol=1e-6)
    assert pre[0] == 0 and np.all(np.diff(pre) > 0)  # acquisition order


def test_aretomo_angle_file_round_trip(frame_series, tmp_path):
    _, tilts = frame_series
    path, dose = tomo.write_aretomo_angles(tilts, tmp_path / "ts.rawtlt")
    values = read_text_columns(path)  # per stack section (ZValue): angle, order from 1
    np.testing.assert_allclose(values[:, 0], tilts.sort_values("z_value").tilt_angle_deg)
    assert list(values[:, 1]) == list(range(1, 22))  # saved in acquisition order
    assert dose == pytest.approx(7.68)
    uneven = tilts.assign(dose_e_A2=np.linspace(2, 4, len(tilts)))
    with pytest.raises(InvalidDataError, match="one dose per image"):
        tomo.write_aretomo_angles(uneven, tmp_path / "x.rawtlt")


def test_mdoc_keys_written_back_as_serialem_writes_them(frame_series, tmp_path):
    source, tilts = frame_series
    # strip the doses: they must come back from the table
    bare = tmp_path / "bare.mdoc"
    bare.write_text(
        "\n".join(
            line
            for line in source.read_text().splitlines()
            if not line.startswith(("PriorRecordDose", "ExposureDose = 7.68"))
        )
        + "\n"
    )
    written, sections = tomo.write_mdoc_doses(bare, tilts, tmp_path / "back.mdoc")
    assert sections == 21
    back = recorded(written)
    for r in tilts.itertuples():
        prior, own = back[str(int(r.z_value))]
        assert prior == pytest.approx(r.pre_exposure_e_A2, rel=1e-5)
        assert own == pytest.approx(r.dose_e_A2, rel=1e-5)
    assert "ExposureDose = 7.68\n" in written.read_text()  # %g, as SerialEM writes
    assert table_of(written).frame.image.is_unique  # and it reads back as a tilt series
    with pytest.raises(InvalidDataError, match="another file"):
        tomo.write_mdoc_doses(bare, tilts, bare)


def test_cli_tilt_series_exports(frame_series, tmp_path, capsys):
    from napari_emcal.cli import main

    source, tilts = frame_series
    out = {name: tmp_path / name for name in ("a.txt", "o.txt", "r.star", "t.rawtlt", "p.png")}
    code = main(
        [
            "dose",
            str(source),
            "--cumulative-angle",
            str(out["a.txt"]),
            "--cumulative-order",
            str(out["o.txt"]),
            "--relion-star",
            str(out["r.star"]),
            "--aretomo-angles",
            str(out["t.rawtlt"]),
            "--plot",
            str(out["p.png"]),
            "--mdoc-out",
            str(tmp_path / "back.mdoc"),
        ]
    )
    text = capsys.readouterr().out
    assert code == 0 and "dose-symmetric" in text and "between tilts" in text
    assert all(p.exists() and p.stat().st_size for p in out.values())
    assert "-ImgDose 7.68" in text


def test_cli_refuses_an_mdoc_without_sections(tmp_path, capsys):
    from napari_emcal.cli import main

    path = tmp_path / "none.mdoc"
    path.write_text("Voltage = 300\n")
    assert main(["dose", str(path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "no [ZValue]" in err


def test_dose_text_leaves_the_frame_set_out(frame_series, tmp_path):
    from napari_emcal.dose.export import dose_columns

    source, tilts = frame_series
    images, prior, dose = dose_columns(table_of(source))
    assert "fts [frame set 0]" not in images and len(images) == 21
    np.testing.assert_allclose(prior, tilts.pre_exposure_e_A2)
    two = table_of(source, write_tilt_series_mdoc(tmp_path / "other.mdoc", [0, 3], 2.0))
    with pytest.raises(InvalidDataError, match="one tilt series at a time"):
        dose_columns(two)


def test_session_utc_offset_setting(tmp_path, monkeypatch, capsys):
    from napari_emcal.cli import main
    from napari_emcal.errors import InvalidParameterError
    from napari_emcal.settings import load_settings, save_setting

    monkeypatch.setenv("NAPARI_EMCAL_SETTINGS", str(tmp_path / "settings.json"))
    assert load_settings()["dose_utc_offset"] is None
    save_setting("dose_utc_offset", "UTC+2")
    assert load_settings()["dose_utc_offset"] == "+02:00"
    with pytest.raises(InvalidParameterError, match="UTC offset"):
        save_setting("dose_utc_offset", "two hours")
    path = write_tilt_series_mdoc(tmp_path / "ts.mdoc", [0, 3, -3], 2.0)
    assert main(["dose", str(path)]) == 0
    err = capsys.readouterr().err
    assert err.count("without a UTC offset") == 1 and "taken as UTC+02:00" in err


def test_cli_says_a_truncated_mdoc_in_one_line(tmp_path, capsys):
    from napari_emcal.cli import main

    path = write_tilt_series_mdoc(tmp_path / "ts.mdoc", [0, 3, -3, -6], 2.0)
    text = path.read_text()
    path.write_text(text[: text.rindex("ExposureTime") + len("ExposureTi")])
    assert main(["dose", str(path)]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if "truncated" in line]
    assert len(err) == 1 and err[0].startswith("emcal: warning: ts.mdoc ends inside section")


def test_frame_numbers_that_contradict_the_zvalues_are_flagged(tmp_path):
    path = write_frame_tilt_series_mdoc(tmp_path / "fts.mdoc", [0, 3, -3])
    path.write_text(
        path.read_text()
        .replace("FrameTSStartEndFrames = 22 34", "FrameTSStartEndFrames = 50 62")
        .replace("FrameTSStartEndFrames = 44 56", "FrameTSStartEndFrames = 22 34")
    )
    frame = table_of(path).frame
    assert frame.problems.str.contains("FrameTSStartEndFrames put the tilts in another").any()


def test_times_of_several_real_instruments_give_one_note_per_file():
    paths = [
        real_file("images/serialem_mdoc/tilt_series.mdoc"),
        real_file("images/serialem_mdoc/montage_section.mdoc"),
        real_file("images/tvips/TVIPS_bin4.tif"),
        real_file("images/velox_emd/test_si_16x16_215kx.emd"),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = table_of(*paths)
    frame = table.frame
    assert not frame.problems.str.contains("UTC offset").any()  # no flag on any row
    notes = table.notes()
    # the Velox time carries its offset, the TVIPS file has none; the 104 SerialEM times
    # (each flagged before) are local: one note per file
    assert [n.split(":")[0] for n in notes] == ["tilt_series.mdoc", "montage_section.mdoc"]
    assert "41 time(s)" in notes[0] and "63 time(s)" in notes[1]


@pytest.mark.parametrize(
    "option", ["--csv", "--excel", "--relion-star", "--mdoc-out", "--cumulative-angle"]
)
def test_cli_never_writes_over_its_input(tmp_path, capsys, option):
    from napari_emcal.cli import main

    path = write_tilt_series_mdoc(tmp_path / "ts.mdoc", [0, 3, -3], 2.0)
    before = path.read_bytes()
    assert main(["dose", str(path), option, str(path)]) == 2
    assert "refusing to write over it" in capsys.readouterr().err
    assert path.read_bytes() == before


def test_mdoc_that_is_not_a_file_is_refused(tmp_path):
    with pytest.raises(InvalidDataError):
        read_mdoc(tmp_path)
