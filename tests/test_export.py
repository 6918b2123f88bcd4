"""Exports checked against the other tool's own code where it installs (issue 22)."""

import json

import mdocfile
import numpy as np
import pytest
from scipy import ndimage

from napari_emcal.cli import main
from napari_emcal.dose import DoseTable
from napari_emcal.dose.export import dose_columns, write_dose_text, write_mdoc_doses
from napari_emcal.errors import InvalidDataError
from napari_emcal.geometry import rotation_flip_matrix
from napari_emcal.overfocus import TwinParams
from napari_emcal.overfocus.export import libertem_com

from .conftest import real_file


def _twin(rotation=37.5, flip=False, **changes):
    values = dict(
        overfocus=1e-6,
        scan_pixel_size=1.5e-9,
        camera_length=0.2,
        detector_pixel_size=55e-6,
        cy=12.5,
        cx=14.0,
        scan_rotation=rotation,
        flip_y=flip,
    )
    values.update(changes)
    return TwinParams(**values)


@pytest.mark.parametrize("rotation", [-151.0, 0.0, 37.5, 83.0])
@pytest.mark.parametrize("flip", [False, True])
def test_libertem_apply_correction_turns_the_detector_field_back(rotation, flip):
    """A specimen's (curl-free) deflection field, recorded through the twin's scan rotation
    and flip, comes back out of LiberTEM's apply_correction with the exported values."""
    from libertem.udf.com import apply_correction

    params = _twin(rotation, flip, scan_pixel_size=1e-9, camera_length=0.15)
    rng = np.random.default_rng(1)
    potential = ndimage.gaussian_filter(rng.normal(size=(24, 24)), 2.0)
    e_y, e_x = np.gradient(potential)  # the field in scan directions
    # what the detector records: the twin maps detector vectors to scan vectors by R F
    inverse = np.linalg.inv(rotation_flip_matrix(rotation, flip))
    d_y = inverse[0, 0] * e_y + inverse[0, 1] * e_x
    d_x = inverse[1, 0] * e_y + inverse[1, 1] * e_x
    exported = libertem_com(params)
    y, x = apply_correction(d_y, d_x, exported["scan_rotation"], exported["flip_y"])
    np.testing.assert_allclose(y, e_y, atol=1e-12)
    np.testing.assert_allclose(x, e_x, atol=1e-12)
    assert (exported["cy"], exported["cx"]) == (12.5, 14.0)


def test_cli_export_libertem(tmp_path, capsys):
    params = TwinParams(
        overfocus=1e-6,
        scan_pixel_size=1e-9,
        camera_length=0.15,
        detector_pixel_size=55e-6,
        cy=31.0,
        cx=30.5,
        scan_rotation=83.0061,
        flip_y=True,
    )
    params.save(tmp_path / "twin.json")
    twin, out = str(tmp_path / "twin.json"), str(tmp_path / "l.json")
    assert main(["export", "libertem", twin, "--out", out]) == 0
    document = json.loads((tmp_path / "l.json").read_text())
    assert document["scan_rotation"] == pytest.approx(83.0061, abs=1e-9) and document["flip_y"]
    assert "scan_rotation=83.0061, flip_y=True" in capsys.readouterr().out


def _tilt_table(stem, n=5):
    table = DoseTable()
    for z in range(n):
        table.add(
            image=f"{stem} [{z}]",
            time=f"2015-11-30T15:{21 + z:02d}:00",
            mode="TEM",
            current_pa=100.0,
            illuminated_diameter_um=1.0,
            exposure_s=0.8 + 0.1 * z,
        )
    return table


def test_dose_columns_and_text(tmp_path):
    table = _tilt_table("ts")
    images, prior, dose = dose_columns(table)
    assert images[0] == "ts [0]" and prior[0] == 0.0
    np.testing.assert_allclose(prior[1:], np.cumsum(dose)[:-1])
    lines = [
        line
        for line in write_dose_text(table, tmp_path / "d.txt").read_text().splitlines()
        if not line.startswith("#")
    ]
    values = np.array([[float(v) for v in line.split("#")[0].split()] for line in lines])
    np.testing.assert_allclose(values, np.stack([prior, dose], axis=1), atol=1e-4)
    table.add(image="no dose", time="2015-11-30T16:00:00", mode="TEM")
    with pytest.raises(InvalidDataError, match="no dose"):
        dose_columns(table)


def test_mdoc_doses_read_back_with_mdocfile(tmp_path):
    source = real_file("images/serialem_mdoc/tilt_series.mdoc")
    table = _tilt_table(source.stem, n=4)
    written, sections = write_mdoc_doses(source, table, tmp_path / "with_dose.mdoc")
    assert sections == 4
    back = mdocfile.read(written)
    _, prior, dose = dose_columns(table)
    np.testing.assert_allclose(back["ExposureDose"].to_numpy()[:4], dose, atol=1e-4)
    np.testing.assert_allclose(back["PriorRecordDose"].to_numpy()[:4], prior, atol=1e-4)
    original = mdocfile.read(source)
    assert len(back) == len(original)  # every section kept
    np.testing.assert_allclose(back["TiltAngle"], original["TiltAngle"])
    assert back["ExposureDose"].to_numpy()[4] == 0  # a section without a row: unchanged


def test_stem_dataset_as_a_hyperspy_signal_read_back_by_rosettasciio(tmp_path):
    import dask.array as da
    from rsciio.hspy import file_reader

    from napari_emcal.overfocus import TwinParams
    from napari_emcal.overfocus.export import write_stem_hspy

    data = np.random.default_rng(0).integers(0, 100, (3, 4, 16, 20)).astype(np.uint16)
    twin = TwinParams(
        overfocus=1.5e-6,
        scan_pixel_size=2.5e-9,
        camera_length=0.2,
        detector_pixel_size=55e-6,
        cy=7.5,
        cx=10.25,
        scan_rotation=-93.25,
        flip_y=True,
    )
    path = write_stem_hspy(tmp_path / "scan.hspy", da.from_array(data, chunks=(1, 4, 16, 20)), twin)
    (signal,) = file_reader(str(path))
    np.testing.assert_array_equal(signal["data"], data)
    axes = {a["name"]: a for a in signal["axes"]}
    assert [a["name"] for a in signal["axes"]] == ["y", "x", "ky", "kx"]  # array order
    assert [a["navigate"] for a in signal["axes"]] == [True, True, False, False]
    assert axes["y"]["scale"] == pytest.approx(2.5) and axes["y"]["units"] == "nm"
    mrad = 55e-6 / 0.2 * 1e3
    assert axes["kx"]["scale"] == pytest.approx(mrad) and axes["kx"]["units"] == "mrad"
    # the beam centre is at angle 0
    assert axes["ky"]["offset"] + 7.5 * mrad == pytest.approx(0, abs=1e-12)
    assert axes["kx"]["offset"] + 10.25 * mrad == pytest.approx(0, abs=1e-12)
    assert signal["metadata"]["Signal"]["signal_type"] == "electron_diffraction"
    notes = signal["original_metadata"]["napari_emcal"]
    assert notes["scan_rotation_deg"] == -93.25 and notes["flip_y"]


def test_stem_axes_without_lengths_stay_in_pixels():
    from napari_emcal.io.writers import stem_axes

    axes = stem_axes((2, 3, 8, 8))
    assert {a["units"] for a in axes} == {"px"} and all(a["scale"] == 1 for a in axes)


def test_cli_export_hspy_of_the_sample(tmp_path, capsys):
    from rsciio.hspy import file_reader

    out = tmp_path / "sample.hspy"
    assert main(["export", "hspy", "sample", "--out", str(out)]) == 0
    assert "axes from the file's metadata" in capsys.readouterr().out
    (signal,) = file_reader(str(out))
    assert signal["data"].ndim == 4 and signal["axes"][0]["units"] == "nm"
    assert main(["export", "hspy", str(tmp_path / "missing.npy"), "--out", str(out)]) == 2


# -- py4DSTEM -------------------------------------------------------------------------
def _py4dstem_calibrated(values, q):
    """py4DSTEM's documented calibration of detector vectors q (n, 2) = (qx, qy) =
    (row, column): origin subtracted, then R(QR_rotation) @ (qx, qy), or @ (qy, qx) with
    QR_flip (py4DSTEM.braggvectors.braggvectors.CalibratedVectorGetter._transform)."""
    phi = np.radians(values["QR_rotation_degrees"])
    rotation = np.array([[np.cos(phi), -np.sin(phi)], [np.sin(phi), np.cos(phi)]])
    centred = q - [values["qx0_mean"], values["qy0_mean"]]
    if values["QR_flip"]:
        centred = centred[:, ::-1]
    return centred @ rotation.T


@pytest.mark.parametrize("rotation", [-151.0, 0.0, 37.5, 83.0, 179.0])
@pytest.mark.parametrize("flip", [False, True])
def test_py4dstem_values_turn_detector_vectors_as_the_twin_does(rotation, flip):
    from napari_emcal.overfocus.export import py4dstem_calibration

    twin = _twin(rotation, flip)
    values = py4dstem_calibration(twin)
    q = np.random.default_rng(3).normal(size=(20, 2)) * 10 + [twin.cy, twin.cx]
    expected = (q - [twin.cy, twin.cx]) @ rotation_flip_matrix(rotation, flip).T
    np.testing.assert_allclose(_py4dstem_calibrated(values, q), expected, atol=1e-12)
    assert values["QR_flip"] is flip and -180 < values["QR_rotation_degrees"] <= 180
    assert values["R_pixel_size"] == pytest.approx(15.0) and values["R_pixel_units"] == "A"
    assert values["Q_pixel_size"] == pytest.approx(55e-6 / 0.2 * 1e3)


PY4DSTEM_SCRIPT = """
import json, sys, warnings
import numpy as np
warnings.filterwarnings("ignore")
from py4DSTEM.data import Calibration
from py4DSTEM.braggvectors.braggvectors import CalibratedVectorGetter
values, q = json.loads(sys.argv[1]), np.array(json.loads(sys.argv[2]))
cal = Calibration()
shape = (2, 2)
cal.set_origin((np.full(shape, values["qx0_mean"]), np.full(shape, values["qy0_mean"])))
cal.set_QR_rotation_degrees(values["QR_rotation_degrees"])
cal.set_QR_flip(values["QR_flip"])
data = np.zeros(len(q), dtype=[("qx", float), ("qy", float), ("intensity", float)])
data["qx"], data["qy"] = q[:, 0], q[:, 1]
out = CalibratedVectorGetter._transform(None, data, cal, (0, 0), True, False, False, True)
print(json.dumps(np.stack([out["qx"], out["qy"]], axis=1).tolist()))
"""


@pytest.mark.parametrize("flip", [False, True])
def test_py4dstem_own_vector_calibration_agrees(flip):
    """Through py4DSTEM's own code. py4DSTEM needs NumPy < 2, so it cannot share this
    environment: set NAPARI_EMCAL_PY4DSTEM_PYTHON to an interpreter that has it."""
    import os
    import subprocess

    from napari_emcal.overfocus.export import py4dstem_calibration

    python = os.environ.get("NAPARI_EMCAL_PY4DSTEM_PYTHON")
    if not python:
        pytest.skip("py4DSTEM needs NumPy < 2: set NAPARI_EMCAL_PY4DSTEM_PYTHON to run it")
    twin = _twin(-63.25, flip)
    values = py4dstem_calibration(twin)
    q = np.random.default_rng(4).normal(size=(8, 2)) * 10 + [twin.cy, twin.cx]
    run = subprocess.run(
        [python, "-c", PY4DSTEM_SCRIPT, json.dumps(values), json.dumps(q.tolist())],
        capture_output=True,
        text=True,
        check=True,
    )
    got = np.array(json.loads(run.stdout.strip().splitlines()[-1]))
    expected = (q - [twin.cy, twin.cx]) @ rotation_flip_matrix(-63.25, flip).T
    np.testing.assert_allclose(got, expected, atol=1e-9)


def test_cli_export_py4dstem_with_standard_errors(tmp_path, capsys):
    twin = _twin(83.0, True)
    params = tmp_path / "twin.json"
    twin.save(params, uncertainty={"scan_rotation": 0.03, "overfocus": 2e-9, "cy": 0.1})
    out = tmp_path / "py4dstem.json"
    assert main(["export", "py4dstem", str(params), "--out", str(out)]) == 0
    assert "QR_rotation_degrees 7" in capsys.readouterr().out
    document = json.loads(out.read_text())
    assert document["QR_rotation_degrees"] == pytest.approx(7.0) and document["QR_flip"]
    assert document["standard_errors"] == {"QR_rotation_degrees": 0.03, "qx0_mean": 0.1}
    assert main(["export", "py4dstem", str(tmp_path / "missing.json")]) == 2


def test_hspy_carries_the_standard_errors(tmp_path):
    from rsciio.hspy import file_reader

    from napari_emcal.overfocus.export import write_stem_hspy

    data = np.zeros((2, 2, 4, 4), np.uint16)
    sigma = {"scan_rotation": 0.02, "overfocus": 3e-9}
    path = write_stem_hspy(tmp_path / "s.hspy", data, _twin(), uncertainty=sigma)
    (signal,) = file_reader(str(path))
    errors = signal["original_metadata"]["napari_emcal"]["standard_errors"]
    assert errors["scan_rotation"] == {"value": 0.02, "unit": "deg"}
    assert errors["overfocus"] == {"value": 3e-9, "unit": "m"}


# -- SerialEM -------------------------------------------------------------------------
def _pixel_table():
    from napari_emcal.grating import PixelSizeTable

    table = PixelSizeTable()
    for image, mag, pixel, angle, binning in (
        ("a", 22500, 0.52, 10.0, 1),
        ("b", 29000, 0.81, 12.5, 2),  # a binned image: 0.405 nm per camera pixel
        ("c", 37000, 0.318, 51.0, 1),  # 38.5° from b: near the 45° ambiguity of a square
        ("d", 4800, 2.4, 3.0, 1),  # no mag index given
    ):
        table.add_row(
            image=image, magnification=mag, pixel_size_nm=pixel, angle_deg=angle,
            mode="grating", binning=binning,
        )  # fmt: skip
    return table


def _fields(line):
    """A SerialEM line split as its ParameterIO reads it (name, then numbers)."""
    name, *numbers = line.split()
    return name, [float(v) for v in numbers]


def test_serialem_rotation_and_pixel_lines():
    from napari_emcal.grating.export import serialem_pixel_lines

    lines, skipped = serialem_pixel_lines(_pixel_table(), {22500: 26, 29000: 27, 37000: 28})
    parsed = [_fields(line) for line in lines]
    assert [name for name, _ in parsed] == ["RotationAndPixel"] * 3
    indices = [int(v[0]) for _, v in parsed]
    assert indices == [26, 27, 28]
    # delta rotation: from the next lower mag index only; 999 where unknown or ambiguous
    assert [v[1] for _, v in parsed] == [999, 2.5, 999]
    assert all(v[2] == 999 for _, v in parsed)  # the grating does not show the stage axes
    assert [v[3] for _, v in parsed] == pytest.approx([0.52, 0.405, 0.318])
    assert len(skipped) == 1 and "4800" in skipped[0]


def test_serialem_delta_rotation_needs_adjacent_indices():
    from napari_emcal.grating.export import serialem_pixel_lines

    lines, _ = serialem_pixel_lines(_pixel_table(), {22500: 26, 29000: 28})
    assert [_fields(line)[1][1] for line in lines] == [999, 999]


def test_serialem_high_focus_lines_parse_as_serialem_reads_them():
    from napari_emcal.highdefocus import HighDefocusTable
    from napari_emcal.highdefocus.export import serialem_high_defocus_lines

    table = HighDefocusTable()
    files = dict(near_image="near.mrc", far_image="far.mrc")  # as SerialEM wrote them
    table.add(-100.0, 1.0412, 2.35, intensity=0.41235, spot=5, probe="micro", **files)
    table.add(-200.0, 1.0851, 4.8, intensity=0.41235, spot=5, probe="nano", **files)
    table.add(-150.0, 1.06, 3.5, spot=5, probe="micro", **files)  # no intensity
    lines, skipped = serialem_high_defocus_lines(table)
    assert len(lines) == 2 and len(skipped) == 1 and "intensity" in skipped[0]
    # ParameterIO.cpp: spot probe defocus intensity scale rotation crossover aperture magInd
    by_defocus = {v[2]: v for _, v in map(_fields, lines)}
    spot, probe, defocus, intensity, scale, rotation, crossover, aperture, mag = by_defocus[-100]
    assert (spot, probe, defocus, intensity) == (5, 1, -100, pytest.approx(0.41235))
    assert (scale, rotation) == (pytest.approx(1.0412), pytest.approx(2.35))
    assert (crossover, aperture, mag) == (0, 0, 0)
    assert by_defocus[-200][1] == 0  # nanoprobe


@pytest.mark.parametrize("scale, rotation", [(1.07, 3.2), (0.96, -12.0)])
def test_high_defocus_scale_and_rotation_mean_what_serialem_stores(scale, rotation):
    """SerialEM's CalibrateHighDefocus stores the lines' length ratio (defocused over
    focused) and the change of their angle, each angle atan2(-(y_end - y_start), x_end -
    x_start) in its display-down memory image coordinates (SerialEMView GetLineLength),
    which for an MRC file SerialEM wrote (rows reversed) is atan2(row change, column
    change) of the stored array. Our line estimate must give the same numbers; for a TIFF
    the export turns the sign (tests/highdefocus/test_export.py)."""
    from napari_emcal.geometry import similarity
    from napari_emcal.highdefocus import line_estimate

    near = np.array([[100.0, 120.0], [340.0, 410.0]])  # (row, column)
    far = near @ similarity(scale, rotation).T + [5.0, -7.0]
    height = 1024

    def serialem_angle(line):
        display_down = height - line[:, 0]  # SerialEM's image y for a stored row
        dy = display_down[0] - display_down[1]
        return np.degrees(np.arctan2(dy, line[1, 1] - line[0, 1]))

    serialem_scale = np.hypot(*(far[1] - far[0])) / np.hypot(*(near[1] - near[0]))
    serialem_rotation = serialem_angle(far) - serialem_angle(near)
    ours, turn, *_ = line_estimate(near, far)
    assert ours == pytest.approx(serialem_scale) == pytest.approx(scale)
    assert turn == pytest.approx(serialem_rotation) == pytest.approx(rotation)


def test_cli_export_serialem_and_bad_mag_index(tmp_path, capsys):
    from napari_emcal.highdefocus import HighDefocusTable

    csv = tmp_path / "pixels.csv"
    _pixel_table().to_csv(csv)
    out = tmp_path / "props.txt"
    argv = ["export", "serialem-pixel", str(csv), "--mag-index", "22500=26"]
    assert main([*argv, "--mag-index", "29000=27", "--out", str(out)]) == 0
    assert out.read_text().splitlines()[1].startswith("RotationAndPixel 27 2.5 999 0.405")
    assert "left out" in capsys.readouterr().out
    assert main([*argv, "--mag-index", "29000:27"]) == 2
    assert "MAGNIFICATION=INDEX" in capsys.readouterr().err
    assert main(["export", "serialem-pixel", str(csv)]) == 2
    table = HighDefocusTable()
    setting = dict(intensity=0.4, spot=5, probe="micro")
    table.add(-100.0, 1.04, 2.3, near_image="n.tif", far_image="f.tif", **setting)
    table.add(-150.0, 1.06, 3.3, near_image="n.mrc", far_image="f.mrc", **setting)
    table.to_csv(tmp_path / "hd.csv")
    assert main(["export", "serialem-high-defocus", str(tmp_path / "hd.csv")]) == 0
    out = capsys.readouterr().out.splitlines()
    # sorted by defocus; a TIFF's rotation turns sign in SerialEM's camera axes
    assert out[0].startswith("HighFocusMagCal 5 1 -150.000000 0.400000 1.060000 3.300000")
    assert out[1].startswith("HighFocusMagCal 5 1 -100.000000 0.400000 1.040000 -2.300000")
