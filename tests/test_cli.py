import json

import numpy as np
import pytest
import tifffile

from napari_emcal.cli import main
from napari_emcal.overfocus import TwinParams
from napari_emcal.samples import overfocus_grating


def test_overfocus_sample_writes_images_and_params(tmp_path, capsys):
    assert main(["overfocus", "sample", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "blur of shifted_sum" in out and "ground truth" in out
    for name in ("point", "selected", "shifted_sum", "sum", "aperture_sum"):
        assert tifffile.imread(tmp_path / f"{name}.tif").ndim == 2
    assert TwinParams.load(tmp_path / "params.json").overfocus > 0
    assert json.loads((tmp_path / "summary.json").read_text())["images"]["aperture_sum"] == [64, 64]


def test_overfocus_file_with_params(tmp_path, capsys):
    data, metadata = overfocus_grating()
    np.save(tmp_path / "d.npy", data)
    truth = TwinParams.from_json_dict(metadata["ground_truth"])
    truth.save(tmp_path / "truth.json")
    assert (
        main(["overfocus", str(tmp_path / "d.npy"), "--params", str(tmp_path / "truth.json")]) == 0
    )
    assert "83.000°" in capsys.readouterr().out


def test_missing_parameters_give_a_clear_error(tmp_path, capsys):
    np.save(tmp_path / "d.npy", np.zeros((2, 2, 8, 8), np.float32))
    assert main(["overfocus", str(tmp_path / "d.npy")]) == 2
    assert "--params" in capsys.readouterr().err


def test_calibrate_prints_and_writes_the_calibrated_parameters(tmp_path, capsys):
    data, metadata = overfocus_grating()
    np.save(tmp_path / "d.npy", data)
    start = TwinParams.from_json_dict(metadata["nominal"])  # 0°, no flip, 1.3 µm
    start.save(tmp_path / "start.json")
    out_json = tmp_path / "cal" / "twin.json"
    assert (
        main(
            [
                "overfocus",
                str(tmp_path / "d.npy"),
                "--params",
                str(tmp_path / "start.json"),
                "--calibrate",
                "--free",
                "scan_rotation",
                "flip_y",
                "overfocus",
                "cy",
                "cx",
                "--json",
                str(out_json),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "calibrated in" in out and str(out_json) in out
    calibrated = TwinParams.load(out_json)
    assert calibrated.flip_y and abs(calibrated.scan_rotation - 83.0) < 0.1
    assert abs(calibrated.overfocus / 1.5e-6 - 1) < 5e-3
    assert f"{calibrated.scan_rotation:.3f}°" in out


def test_calibrate_failure_is_an_error_not_an_answer(tmp_path, capsys):
    np.save(
        tmp_path / "n.npy",
        np.random.default_rng(0).poisson(4.0, (24, 24, 32, 32)).astype(np.uint16),
    )
    TwinParams(
        overfocus=1e-6,
        scan_pixel_size=1e-9,
        camera_length=0.15,
        detector_pixel_size=55e-6,
        cy=15.5,
        cx=15.5,
    ).save(tmp_path / "p.json")
    assert (
        main(
            [
                "overfocus",
                str(tmp_path / "n.npy"),
                "--params",
                str(tmp_path / "p.json"),
                "--calibrate",
                "--json",
                str(tmp_path / "c.json"),
            ]
        )
        == 2
    )
    assert "featureless or noise" in capsys.readouterr().err
    assert not (tmp_path / "c.json").exists()


def test_pixel_size_of_the_sample(tmp_path, capsys):
    from napari_emcal.samples import grating_image

    path = tmp_path / "result.json"
    assert main(["pixel-size", "sample", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    truth = grating_image()[1]["ground_truth"]
    document = json.loads(path.read_text())
    assert document["found"] and document["magnification"] == 3600
    assert document["pixel_size_nm"] == pytest.approx(truth["pixel_size_nm"], rel=2e-3)
    assert "pixel size  4.13" in out


def test_pixel_size_of_a_file_and_no_lattice(tmp_path, capsys):
    import tifffile

    from napari_emcal.grating import lattice_image

    tifffile.imwrite(
        tmp_path / "g.tif",
        lattice_image((512, 512), spacing_px=32.0, dose=50, seed=2).astype(np.uint16),
    )
    assert main(["pixel-size", str(tmp_path / "g.tif"), "--spacing-nm", "100"]) == 0
    assert "pixel size  3.125 ±" in capsys.readouterr().out
    np.save(tmp_path / "noise.npy", np.random.default_rng(1).normal(size=(256, 256)))
    assert main(["pixel-size", str(tmp_path / "noise.npy")]) == 2
    assert "no lattice found" in capsys.readouterr().err


def test_high_defocus_sample_into_a_table_and_lookup(tmp_path, capsys):
    table = tmp_path / "hd.csv"
    result = tmp_path / "hd.json"
    args = [
        "high-defocus",
        "sample",
        "--json",
        str(result),
        "--table",
        str(table),
        "--defocus-um",
        "-150",
        "--intensity",
        "42.5",
        "--spot",
        "5",
        "--probe",
        "micro",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "scale       1.124" in out and "recorded in the calibration history" in out
    assert json.loads(result.read_text())["scale"] == pytest.approx(1.124, rel=2e-3)
    from napari_emcal.history import History

    (entry,) = History().entries("high_defocus")
    assert entry.setting == "defocus_um=-150, probe=micro, spot=5, intensity=42.5"
    assert entry.values["scale"] == pytest.approx(1.124, rel=2e-3)
    assert main(["high-defocus-lookup", str(table), "--defocus-um", "-75"]) == 0
    scale, rotation = _numbers(capsys.readouterr().out, "scale", "rotation")
    truth = (1.124, -5.3)  # halfway from (1, 0°) at focus to the sample's -150 µm values
    assert scale == pytest.approx(1 + (truth[0] - 1) / 2, rel=1e-3)
    assert rotation == pytest.approx(truth[1] / 2, abs=0.05)
    assert main(["high-defocus-lookup", str(table), "--defocus-um", "-300"]) == 0
    assert "not extrapolated" in capsys.readouterr().err


def test_high_defocus_files_and_bad_lines(tmp_path, capsys):
    from napari_emcal.highdefocus import defocus_pair

    pair = defocus_pair((512, 512), scale=1.1, rotation_deg=-4.0, seed=3)
    np.save(tmp_path / "near.npy", pair.near)
    tifffile.imwrite(tmp_path / "far.tif", pair.far)
    ends = np.array([[100.0, 120.0], [400.0, 380.0]])
    far_ends = pair.near_to_far(ends)
    args = [
        "high-defocus",
        str(tmp_path / "near.npy"),
        str(tmp_path / "far.tif"),
        "--near-line",
        *map(str, ends.ravel()),
        "--far-line",
        *map(str, far_ends.ravel()),
    ]
    assert main(args) == 0
    scale, rotation = _numbers(capsys.readouterr().out, "scale", "rotation")
    assert scale == pytest.approx(1.1, rel=2e-3) and rotation == pytest.approx(-4.0, abs=0.1)
    short = args[:4] + ["100", "100", "100", "150"] + args[8:]
    assert main(short) == 2
    assert "near-focus line is 50.0 px long" in capsys.readouterr().err
    assert main(args[:3]) == 2
    assert "give --near-line and --far-line" in capsys.readouterr().err


def _numbers(out, *names):
    """The first number after each name at the start of a line of the CLI's output."""
    values = {}
    for line in out.splitlines():
        key, _, rest = line.partition(" ")
        if key in names and key not in values:
            values[key] = float(rest.split()[0].rstrip("°"))
    return [values[name] for name in names]


def test_dose_of_files(tmp_path, capsys):
    from tests.conftest import real_file

    velox = real_file("images/velox_emd/test_si_16x16_215kx.emd")
    out_csv, out_xlsx = tmp_path / "dose.csv", tmp_path / "dose.xlsx"
    np.save(tmp_path / "tem.npy", np.zeros((64, 64), np.uint16))
    assert (
        main(
            [
                "dose",
                str(velox),
                str(tmp_path / "tem.npy"),
                "--budget",
                "500",
                "--current-pa",
                "1000",
                "--beam-diameter-um",
                "1",
                "--csv",
                str(out_csv),
                "--excel",
                str(out_xlsx),
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    assert "1043" in captured.out  # the Velox per-probe dose, from its recorded current
    assert "exceeded from test_si_16x16_215kx" in captured.err
    from napari_emcal.dose import DoseTable

    table = DoseTable.from_excel(out_xlsx)
    frame = table.frame.set_index("image")
    assert frame.loc["test_si_16x16_215kx", "current_pa"] == pytest.approx(216.546, abs=1e-3)
    assert frame.loc["tem", "current_pa"] == 1000  # typed: the file records none
    assert "mode unknown" in frame.loc["tem", "problems"]


def test_check_sample_and_descan_warning(tmp_path, capsys):
    from napari_emcal.dataset_check import diffraction_dataset

    path = tmp_path / "report.json"
    assert main(["check", "sample", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "CoM/DPC:         suitable" in out
    document = json.loads(path.read_text())
    assert document["beam"]["radius"] > 20 and document["max_angle_mrad"] > 10
    np.save(
        tmp_path / "descan.npy",
        diffraction_dataset((16, 16), (48, 48), radius=7, descan=((0.3, 0), (0, 0.3)), seed=1),
    )
    assert main(["check", str(tmp_path / "descan.npy"), "--tolerance-px", "1"]) == 0
    assert "the disk moves" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["check", "sample", "--tolerance-px", "nan"], "--tolerance-px"),
        (["check", "sample", "--tolerance-px", "-1"], "--tolerance-px"),
        (["check", "sample", "--max-count", "-5"], "--max-count"),
        (["check", "sample", "--max-count", "0"], "--max-count"),
        (["check", "sample", "--camera-length-mm", "-150"], "--camera-length-mm"),
        (["overfocus", "sample", "--scan-shape", "0", "2304"], "--scan-shape"),
        (["overfocus", "sample", "--scan-shape", "-48", "-48"], "--scan-shape"),
        (["overfocus", "sample", "--free", "cy"], "--calibrate"),
        (["overfocus", "sample", "--executor", "threads", "--scheduler", "tcp://x:1"], "not both"),
        (["check", "sample", "--executor", "inline", "--scheduler", "tcp://x:1"], "not both"),
    ],
)
def test_bad_flags_are_one_line_and_exit_code_2(argv, message, capsys):
    with pytest.raises(SystemExit) as stop:
        code = main(argv)
        raise SystemExit(code)
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_lookup_on_the_uncalibrated_side_of_focus_is_refused(tmp_path, capsys):
    from napari_emcal.highdefocus import HighDefocusTable

    table = HighDefocusTable()
    table.add(-100, 1.08, -3.5)
    table.to_csv(tmp_path / "t.csv")
    assert main(["high-defocus-lookup", str(tmp_path / "t.csv"), "--defocus-um", "100"]) == 2
    assert "cannot answer" in capsys.readouterr().err


def test_an_unforeseen_error_is_one_line_with_a_log(monkeypatch, capsys):
    from napari_emcal import cli

    def broken(args):
        raise ZeroDivisionError("boom")

    args = cli.build_parser().parse_args(["dose", "x.tif"])
    args.func = broken
    parser = type("Parser", (), {"parse_args": staticmethod(lambda argv: args)})()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    assert cli.main(["dose", "x.tif"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "ZeroDivisionError: boom" in err and ".log" in err
