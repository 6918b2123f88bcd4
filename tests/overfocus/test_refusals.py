"""The estimate and the calibration say "cannot tell" instead of guessing: data that are
not overfocused, too small a scan, noise, NaN."""

import numpy as np
import pytest

from napari_emcal.errors import CalibrationFailedError, InvalidDataError
from napari_emcal.io.readers import open_4d
from napari_emcal.overfocus import TwinParams, estimate, simulate
from napari_emcal.specimens import detailed_specimen
from tests.conftest import real_file

START = TwinParams(
    overfocus=1e-6,
    scan_pixel_size=1e-9,
    camera_length=0.15,
    detector_pixel_size=55e-6,
    cy=31.5,
    cx=31.5,
)


@pytest.mark.parametrize(
    "relative",
    [
        "4d/fpd_hdf5/FPD_HDF5.hdf5",
        "4d/merlin_4x2/001_4x2_6bit.mib",
        "4d/blockfile/test1.blo",
        "4d/merlin_no_beam/003_merlin_test_roi_sig256x64_nav4x2_hot_pixel_52x_39y.mib",
    ],
)
def test_real_files_that_are_not_overfocused_give_no_estimate(relative):
    data = open_4d(real_file(relative)).data
    with pytest.raises(CalibrationFailedError):
        estimate(data, START)


def test_in_focus_data_give_no_parallax_and_no_answer():
    # a focused probe (overfocus 0.1 nm here: k ≈ 0.004 scan px per detector px)
    truth = START.replace(overfocus=1e-10, semiconv=12e-3)
    specimen = detailed_specimen((160, 160), feature_size=2.0, seed=1)
    data = simulate(specimen, (32, 32), (64, 64), truth, dose=5e4, seed=1)
    with pytest.raises(CalibrationFailedError, match="do not shift|do not agree"):
        estimate(data, START)


def test_noise_and_constant_frames_give_no_answer():
    rng = np.random.default_rng(0)
    with pytest.raises(CalibrationFailedError):
        estimate(rng.poisson(5, (32, 32, 64, 64)).astype(np.uint16), START)
    with pytest.raises(CalibrationFailedError):
        estimate(np.full((32, 32, 64, 64), 7, np.uint16), START)


def test_nan_in_the_data_is_reported_with_where():
    truth = START.replace(overfocus=1.2e-6, semiconv=12e-3, scan_rotation=30.0)
    specimen = detailed_specimen((160, 160), feature_size=2.0, seed=2)
    data = simulate(specimen, (32, 32), (64, 64), truth, dose=5e4, seed=2).astype(np.float32)
    data[5, 7, 30, 30] = np.nan
    with pytest.raises(InvalidDataError, match="NaN or infinite"):
        estimate(data, START)


def test_calibration_reports_standard_errors_that_cover_the_truth():
    from napari_emcal.overfocus import calibrate

    rng = np.random.default_rng(7)
    for seed in range(3):
        truth = START.replace(
            overfocus=float(rng.uniform(0.8, 1.8)) * 1e-6,
            scan_rotation=float(rng.uniform(-180, 180)),
            flip_y=bool(seed % 2),
            semiconv=12e-3,
            cy=31.6,
            cx=32.3,
        )
        specimen = detailed_specimen((200, 200), feature_size=2.0, seed=seed)
        data = simulate(specimen, (48, 48), (64, 64), truth, dose=5e4, seed=seed)
        result = calibrate(data, truth.replace(scan_rotation=0.0, flip_y=False, overfocus=1e-6))
        sigma = result.uncertainty
        assert set(sigma) == {"scan_rotation", "overfocus"}
        rotation_error = abs((result.params.scan_rotation - truth.scan_rotation + 180) % 360 - 180)
        assert rotation_error <= 3 * sigma["scan_rotation"]
        assert abs(result.params.overfocus - truth.overfocus) <= 3 * sigma["overfocus"]
        assert result.params.flip_y == truth.flip_y and result.flip_margin > 10
