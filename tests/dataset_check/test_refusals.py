"""The dataset check says "no disk" / "not suitable" where that is the truth: hot pixels,
a test pattern, negative counts, NaN, a beam seen in few frames."""

import numpy as np
import pytest

from napari_emcal.dataset_check.analysis import find_beam
from napari_emcal.dataset_check.report import check_dataset
from napari_emcal.dataset_check.simulate import diffraction_dataset
from napari_emcal.errors import CalibrationFailedError


def test_hot_pixels_are_not_a_disk():
    rng = np.random.default_rng(0)
    frame_sum = rng.poisson(10, (64, 256)).astype(float)
    frame_sum[39, 52] = 5000.0  # hot pixels
    frame_sum[10, 200] = 3000.0
    with pytest.raises(CalibrationFailedError):
        find_beam(frame_sum)


def test_a_printed_digit_is_not_a_disk():
    pattern = np.zeros((128, 128))
    pattern[30:100, 60:68] = 1000.0  # a "1": bright, large, not round
    pattern[30:38, 50:68] = 1000.0
    with pytest.raises(CalibrationFailedError, match="not round"):
        find_beam(pattern + 5.0)


def test_a_real_disk_is_still_found():
    data = diffraction_dataset(scan_shape=(8, 8), detector_shape=(64, 64), seed=1)
    beam = find_beam(data.sum(axis=(0, 1)))
    assert beam.radius > 5


def test_negative_counts_and_nan_are_reported():
    rng = np.random.default_rng(2)
    noise = rng.integers(-100, 100, (8, 8, 32, 32)).astype(np.int8)
    _, report = check_dataset(noise)
    assert report.negative_min is not None and report.negative_min < 0
    assert report.verdicts["CoM/DPC"][0] == "not suitable"
    assert report.verdicts["ptychography"][0] == "not suitable"
    assert "nan %" not in report.summary()
    data = diffraction_dataset(scan_shape=(8, 8), detector_shape=(64, 64), seed=3)
    data = data.astype(np.float32)
    data[2, 5, 10, 10] = np.nan
    _, report = check_dataset(data)
    assert report.nonfinite_frames == 1 and report.first_nonfinite == (2, 5)
    assert all(verdict == "not suitable" for verdict, _ in report.verdicts.values())


def test_a_beam_seen_in_few_frames_is_no_disk():
    data = diffraction_dataset(scan_shape=(10, 10), detector_shape=(64, 64), seed=4)
    data = data.astype(np.float32)
    data[:, 3:] = np.random.default_rng(4).poisson(1.0, data[:, 3:].shape)  # beam blanked
    _, report = check_dataset(data)
    assert report.verdicts["virtual imaging"][0] == "not suitable"
    assert any("only" in note and "frames" in note for note in report.notes)
