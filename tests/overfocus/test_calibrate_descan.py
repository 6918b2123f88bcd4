"""Calibration with descan: the beam walks on the detector as the probe scans."""

import numpy as np
import pytest

from napari_emcal.engine.descan import CompensatedData
from napari_emcal.errors import InvalidParameterError
from napari_emcal.overfocus import TwinParams, calibrate, estimate, simulate
from napari_emcal.overfocus.calibrate import estimate_descan
from napari_emcal.specimens import detailed_specimen
from tests.conftest import real_file

from .test_calibrate import _truth as calibrate_twin

SCAN, DETECTOR = (48, 48), (64, 64)
ZERO = ((0.0, 0.0), (0.0, 0.0))


def _truth(overfocus, rotation, flip, descan):
    """The geometry of test_calibrate's twin, with a descan."""
    return calibrate_twin(overfocus, rotation, flip).replace(descan=descan)


def _data(truth, seed, dose):
    specimen = detailed_specimen((160, 160), feature_size=2.0, seed=seed)
    return simulate(specimen, SCAN, DETECTOR, truth, dose=dose, seed=seed)


def _angle_error(a, b):
    return abs((a - b + 180.0) % 360.0 - 180.0)


@pytest.mark.parametrize(
    "overfocus, rotation, flip, descan, seed, dose",
    [
        (1.2e-6, 83.0, True, ((0.15, -0.1), (0.07, 0.12)), 1, 5e4),
        (-1.0e-6, -151.3, False, ((-0.12, 0.15), (0.1, -0.05)), 2, None),
        (0.9e-6, 12.4, True, ((0.0, 0.15), (-0.15, 0.0)), 3, 5e4),
    ],
)
def test_calibrate_fits_descan_and_stays_unbiased(overfocus, rotation, flip, descan, seed, dose):
    truth = _truth(overfocus, rotation, flip, descan)
    data = _data(truth, seed, dose)
    # zero descan, 25 % overfocus error, the wrong flip
    start = truth.replace(overfocus=1.25 * overfocus, flip_y=not flip, descan=ZERO)
    result = calibrate(data, start, free=("scan_rotation", "flip_y", "overfocus", "descan"))
    p, sigma = result.params, result.uncertainty
    error = np.array(p.descan) - np.array(descan)
    assert np.abs(error).max() < 0.003
    assert np.all(np.abs(error) <= 3 * sigma["descan"])
    assert p.flip_y == flip
    assert _angle_error(p.scan_rotation, rotation) < 0.05
    assert _angle_error(p.scan_rotation, rotation) <= 3 * sigma["scan_rotation"]
    assert p.overfocus == pytest.approx(overfocus, rel=2e-3)
    assert abs(p.overfocus - overfocus) <= 3 * sigma["overfocus"]
    assert (p.cy, p.cx) == (start.cy, start.cx)  # not free: kept
    np.testing.assert_allclose(result.details["descan"], p.descan)


def test_uncompensated_parallax_is_biased_and_a_known_descan_is_honoured():
    # M_eff = (I − M D)⁻¹ M: ignoring a descan of 0.15 px/px moves the fitted twin
    descan = ((0.15, 0.0), (0.0, 0.15))
    truth = _truth(1.4e-6, -47.0, False, descan)
    data = _data(truth, 5, None)
    free = ("scan_rotation", "overfocus")
    ignored = estimate(data, truth.replace(descan=ZERO), free=free)
    known = estimate(data, truth, free=free)
    assert abs(ignored.overfocus / 1.4e-6 - 1) > 0.02
    assert known.overfocus == pytest.approx(1.4e-6, rel=0.01)
    assert known.descan == descan  # not free: kept
    # the centre, fitted with the descan, is the beam's at the scan centre
    both = estimate(data, truth.replace(descan=ZERO), free=free + ("cy", "cx", "descan"))
    assert (both.cy, both.cx) == (pytest.approx(31.6, abs=0.1), pytest.approx(32.3, abs=0.1))
    np.testing.assert_allclose(both.descan, descan, atol=0.003)


def test_descan_alone_on_a_focused_probe_like_disk():
    # a disk that barely shows the specimen: the descan is still measured
    truth = _truth(1e-6, 0.0, False, ((0.05, -0.02), (0.03, 0.08))).replace(semiconv=6e-3)
    data = simulate(np.ones((120, 120)), (24, 20), DETECTOR, truth, dose=2e4, seed=1)
    fit = estimate_descan(data)
    np.testing.assert_allclose(fit.matrix, truth.descan, atol=3 * fit.matrix_sigma.max() + 1e-3)
    assert fit.centre == (pytest.approx(31.6, abs=0.1), pytest.approx(32.3, abs=0.1))
    # compensated with the fit, the beam stays put
    again = estimate_descan(CompensatedData(data, fit.matrix))
    assert np.abs(again.matrix).max() < 3 * again.matrix_sigma.max() + 1e-3


def test_descan_is_a_free_parameter_only_by_name():
    truth = _truth(1e-6, 0.0, False, ZERO)
    with pytest.raises(InvalidParameterError):
        calibrate(np.zeros((8, 8, 16, 16)), truth, free=["descan_matrix"])


def test_real_fpd_descan_agrees_with_the_dataset_check():
    from napari_emcal.dataset_check.report import check_dataset
    from napari_emcal.io.readers import open_4d

    dataset = open_4d(real_file("4d/fpd_hdf5/FPD_HDF5.hdf5"))
    ours = estimate_descan(np.asarray(dataset.data))
    report = check_dataset(dataset.data, dataset.metadata)[1]
    theirs = report.descan
    assert ours.matrix_sigma is not None and theirs.matrix_sigma is not None
    combined = np.hypot(ours.matrix_sigma, theirs.matrix_sigma)
    assert np.all(np.abs(ours.matrix - theirs.matrix) <= 3 * combined)
    # and both say the walk is small on this recording
    assert np.abs(ours.matrix).max() < 0.05


def test_cli_fits_the_descan_with_its_standard_errors(tmp_path, capsys):
    from napari_emcal.cli import main
    from napari_emcal.overfocus.twin import load_uncertainty

    descan = ((0.1, 0.05), (-0.08, 0.12))
    truth = _truth(1.1e-6, -30.0, False, descan)
    np.save(tmp_path / "d.npy", _data(truth, 7, 5e4))
    truth.replace(overfocus=1.3e-6, scan_rotation=0.0, descan=ZERO).save(tmp_path / "start.json")
    out_json = tmp_path / "twin.json"
    free = ["scan_rotation", "flip_y", "overfocus", "descan"]
    args = ["overfocus", str(tmp_path / "d.npy"), "--params", str(tmp_path / "start.json")]
    assert main([*args, "--calibrate", "--free", *free, "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "descan (px/px)" in out and "descan ±" in out
    fitted = TwinParams.load(out_json)
    np.testing.assert_allclose(fitted.descan, descan, atol=0.003)
    sigma = load_uncertainty(out_json)["descan"]
    assert np.all(np.abs(np.array(fitted.descan) - descan) <= 3 * sigma)
