"""The descan in the exports: the .hspy notes and the twin JSON, with standard errors."""

import numpy as np

from napari_emcal.overfocus import TwinParams
from napari_emcal.overfocus.twin import load_uncertainty

DESCAN = ((0.11, -0.02), (0.03, 0.09))
SIGMA = np.array([[0.001, 0.002], [0.0015, 0.0012]])


def _twin():
    return TwinParams(
        overfocus=1e-6,
        scan_pixel_size=2.5e-9,
        camera_length=0.2,
        detector_pixel_size=55e-6,
        cy=7.5,
        cx=10.25,
        scan_rotation=12.0,
        descan=DESCAN,
    )


def test_hspy_carries_the_descan_and_its_standard_errors(tmp_path):
    from rsciio.hspy import file_reader

    from napari_emcal.overfocus.export import write_stem_hspy

    data = np.zeros((3, 4, 16, 20), np.uint16)
    path = write_stem_hspy(tmp_path / "s.hspy", data, _twin(), uncertainty={"descan": SIGMA})
    (signal,) = file_reader(str(path))
    notes = signal["original_metadata"]["napari_emcal"]
    np.testing.assert_allclose(notes["descan_px_per_px"], DESCAN)
    assert "s_c" in notes["descan_convention"]
    errors = notes["standard_errors"]["descan"]
    assert errors["unit"] == "px/px"
    np.testing.assert_allclose(errors["value"], SIGMA)


def test_twin_json_round_trips_the_fitted_descan(tmp_path):
    path = tmp_path / "twin.json"
    _twin().save(path, uncertainty={"descan": SIGMA, "scan_rotation": 0.01})
    assert TwinParams.load(path).descan == DESCAN
    sigma = load_uncertainty(path)
    np.testing.assert_allclose(sigma["descan"], SIGMA)
    assert sigma["scan_rotation"] == 0.01
