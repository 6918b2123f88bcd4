"""Exports checked against the other tool's own code where it installs (issue 22)."""

import json

import mdocfile
import numpy as np
import pytest
from scipy import ndimage

from napari_emcal.cli import main
from napari_emcal.dose import DoseTable
from napari_emcal.errors import InvalidDataError
from napari_emcal.export import dose_columns, libertem_com, write_dose_text, write_mdoc_doses
from napari_emcal.geometry import rotation_flip_matrix
from napari_emcal.overfocus import TwinParams

from .conftest import real_file


@pytest.mark.parametrize("rotation", [-151.0, 0.0, 37.5, 83.0])
@pytest.mark.parametrize("flip", [False, True])
def test_libertem_apply_correction_turns_the_detector_field_back(rotation, flip):
    """A specimen's (curl-free) deflection field, recorded through the twin's scan rotation
    and flip, comes back out of LiberTEM's apply_correction with the exported values."""
    from libertem.udf.com import apply_correction

    params = TwinParams(
        overfocus=1e-6,
        scan_pixel_size=1e-9,
        camera_length=0.15,
        detector_pixel_size=55e-6,
        cy=12.5,
        cx=14.0,
        scan_rotation=rotation,
        flip_y=flip,
    )
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

    from napari_emcal.export import write_stem_hspy
    from napari_emcal.overfocus import TwinParams

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
    from napari_emcal.export import stem_axes

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
