"""The check follows the beam: with descan, the CoM and aperture images equal those of
the same specimen recorded without descan (simulated), and the descan is fitted with
standard errors that cover the truth."""

import numpy as np
import pytest

from napari_emcal.dataset_check import analyse, diffraction_dataset, estimate_beam
from napari_emcal.dataset_check.report import check_dataset

SCAN, DETECTOR = (24, 32), (64, 64)
DESCAN = np.array([[0.15, -0.08], [0.05, 0.12]])  # 6.5 px of walk across the scan
#: Compensated aperture images equal the undisturbed ones within counting noise (the
#: two recordings' Poisson noise: the spread of the ratio, in its standard deviations, is
#: at most this) ...
NOISE_SPREAD = 1.3
#: ... and a bias of the mean under this fraction (the bilinear resampling blurs the
#: disk's edge, moving ~1 % of the disk across the BF aperture's edge); the BF image's
#: own contrast is 10 %.
MEAN_TOLERANCE = 0.015
#: The compensated CoM differs from the undisturbed one by at most this many times the
#: difference of two noise realisations (the simulated specimen deflects nothing: each
#: recording's CoM scatter is its counting noise).
COM_NOISE_FACTOR = 1.5


def _record(descan, seed=4):
    return diffraction_dataset(
        SCAN, DETECTOR, centre=(31.0, 32.0), radius=9.0, descan=descan, seed=seed
    )


@pytest.fixture(scope="module")
def checked():
    """(result, report) without and with descan: the same specimen (seed)."""
    return [check_dataset(_record(d), {}) for d in (np.zeros((2, 2)), DESCAN)]


def test_descan_fit_with_standard_errors_covering_the_truth(checked):
    (_, still), (_, walking) = checked
    fit = walking.descan
    assert fit.matrix_sigma is not None
    error = np.abs(fit.matrix - DESCAN)
    assert (error < 4 * np.asarray(fit.matrix_sigma) + 1e-4).all(), (error, fit.matrix_sigma)
    assert np.asarray(fit.matrix_sigma).max() < 0.002
    np.testing.assert_allclose(fit.centre, (31.0, 32.0), atol=0.05)
    assert still.descan.shift_across_scan < 0.1 and not still.images_follow_beam


def test_compensated_apertures_equal_the_undisturbed_ones(checked):
    (still, _), (walking, report) = checked
    assert walking.images_follow_beam and report.images_follow_beam
    assert report.walk_after_compensation_px < 0.2
    for name in ("BF", "ADF"):
        a, b = still.images[name], walking.images[name]
        ratio = b / a
        assert abs(ratio.mean() - 1) < MEAN_TOLERANCE, name
        spread = (ratio - ratio.mean()) / np.sqrt(1 / a + 1 / b)
        assert spread.std() < NOISE_SPREAD, name
    # the disk found in compensated frames is the undisturbed disk, not the blurred one
    assert report.beam.radius == pytest.approx(9.0, abs=0.3)


def test_fixed_apertures_under_descan_fail_that_tolerance():
    """What the compensation removes: the same apertures held still on the walking beam."""
    walking, still = _record(DESCAN), _record(np.zeros((2, 2)))
    beam = estimate_beam(still)
    masks = {"BF": np.hypot(*np.mgrid[:64, :64] - np.reshape(beam.centre, (2, 1, 1))) <= 9}
    fixed = analyse(walking, masks=masks)
    reference = analyse(still, masks=masks)
    ratio = fixed.images["BF"] / reference.images["BF"]
    assert abs(ratio.mean() - 1) > 3 * MEAN_TOLERANCE  # the disk leaves the aperture
    noise = np.sqrt(1 / fixed.images["BF"] + 1 / reference.images["BF"])
    assert ((ratio - ratio.mean()) / noise).std() > 3 * NOISE_SPREAD


def test_compensated_com_equals_the_undisturbed_one(checked):
    (still, _), (walking, report) = checked
    assert walking.com_follows_beam and report.com_follows_beam
    difference = np.hypot(walking.com_y - still.com_y, walking.com_x - still.com_x)
    noise = np.sqrt(still.com_y.var() + still.com_x.var())  # per recording
    assert np.sqrt(np.mean(difference**2)) < COM_NOISE_FACTOR * np.sqrt(2) * noise
    # without following the beam the CoM carries the whole walk
    raw = analyse(_record(DESCAN), beam=estimate_beam(_record(DESCAN)))
    assert np.hypot(raw.com_y - still.com_y, raw.com_x - still.com_x).max() > 2.0


def test_report_says_what_the_walk_does_to_each_analysis(checked):
    (_, still), (_, walking) = checked
    assert set(walking.walk) == {"virtual imaging", "CoM/DPC", "strain", "ptychography"}
    assert not walking.walk["virtual imaging"].matters  # the apertures follow the beam
    assert walking.walk["virtual imaging"].compensated
    assert not walking.walk["CoM/DPC"].matters
    assert walking.walk["ptychography"].matters and walking.walk["strain"].matters
    assert walking.verdicts["CoM/DPC"][0] == "suitable"
    assert "walk" in " ".join(walking.verdicts["ptychography"][1])
    assert not any(e.matters for e in still.walk.values())
    document = walking.to_dict()["descan"]
    assert document["images_follow_beam"] and document["com_follows_beam"]
    assert len(document["px_per_scan_px_sigma"]) == 2 and document["walk_sigma_px"] > 0
    assert document["walk_effects"]["ptychography"]["matters"]
    assert "± 0.000" in walking.summary() or "±" in walking.summary()


def test_walk_below_the_tolerance_keeps_fixed_apertures_and_says_what_they_lose():
    small = np.array([[0.03, 0.0], [0.0, 0.02]])  # 0.7 + 0.6 px: below 2 px
    _, report = check_dataset(_record(small), {}, descan_tolerance_px=2.0)
    assert not report.images_follow_beam and report.com_follows_beam
    effect = report.walk["virtual imaging"]
    assert not effect.compensated and effect.walk_px == pytest.approx(0.5, abs=0.1)
    # the same walk with a tolerance under it: the apertures follow
    _, tight = check_dataset(_record(small), {}, descan_tolerance_px=0.5)
    assert tight.images_follow_beam and tight.walk["virtual imaging"].walk_px < 0.1
