import dask.array as da
import numpy as np
import pytest

from napari_emcal.errors import CalibrationFailedError, Cancelled, InvalidParameterError
from napari_emcal.overfocus import TwinParams, calibrate, compute, estimate, simulate
from napari_emcal.overfocus.calibrate import decompose, overfocus_for_magnification
from napari_emcal.overfocus.sharpness import blur
from napari_emcal.specimens import detailed_specimen

SCAN, DETECTOR = (48, 48), (64, 64)


def _truth(overfocus, rotation, flip):
    return TwinParams(
        overfocus=overfocus,
        scan_pixel_size=1e-9,
        camera_length=0.15,
        detector_pixel_size=55e-6,
        cy=31.6,
        cx=32.3,
        scan_rotation=rotation,
        flip_y=flip,
        semiconv=12e-3,
    )


def _data(truth, seed=0, dose=5e4):
    specimen = detailed_specimen((160, 160), feature_size=2.0, seed=seed)
    return simulate(specimen, SCAN, DETECTOR, truth, dose=dose, seed=seed)


def _angle_error(a, b):
    return abs((a - b + 180.0) % 360.0 - 180.0)


@pytest.mark.parametrize(
    "overfocus, rotation, flip, seed",
    [
        (1.2e-6, 83.0, True, 1),
        (-1.5e-6, -151.3, False, 2),
        (0.9e-6, 171.7, False, 3),
        (-1.0e-6, 12.4, True, 4),
    ],
)
def test_recovers_known_parameters_from_any_rotation_and_flip(overfocus, rotation, flip, seed):
    truth = _truth(overfocus, rotation, flip)
    data = _data(truth, seed)
    rng = np.random.default_rng(seed)
    start = truth.replace(
        overfocus=overfocus * rng.uniform(0.7, 1.3),
        scan_rotation=rng.uniform(-180, 180),
        flip_y=not flip,
    )
    result = calibrate(data, start)
    p = result.params
    assert p.flip_y == flip
    assert _angle_error(p.scan_rotation, rotation) < 0.1
    assert p.overfocus == pytest.approx(overfocus, rel=5e-3)
    assert (p.cy, p.cx) == (start.cy, start.cx)  # not free: kept
    # each of the refinement's two rounds evaluates at least its start
    assert result.n_evaluations == len(result.history) >= 2
    assert result.score > 0.5 and all(isinstance(p, TwinParams) for p, _ in result.history)
    # the calibrated twin gives a sharper shifted_sum than the start
    sharp = blur(compute(data, p, outputs=["shifted_sum"])["shifted_sum"], p, DETECTOR)
    rough = blur(compute(data, start, outputs=["shifted_sum"])["shifted_sum"], start, DETECTOR)
    assert sharp < rough


def test_direct_estimate_alone_is_close_and_centre_from_the_disk():
    truth = _truth(1.4e-6, -47.0, True)
    data = _data(truth, 5)
    start = truth.replace(scan_rotation=0.0, flip_y=False, cy=20.0, cx=40.0)
    first = estimate(data, start, free=("scan_rotation", "flip_y", "overfocus", "cy", "cx"))
    assert first.flip_y
    assert _angle_error(first.scan_rotation, -47.0) < 0.5
    assert first.overfocus == pytest.approx(1.4e-6, rel=0.02)
    assert (first.cy, first.cx) == (pytest.approx(31.6, abs=0.3), pytest.approx(32.3, abs=0.3))


def test_only_free_parameters_change_and_lazy_data_agree():
    truth = _truth(1.1e-6, 30.0, False)
    data = _data(truth, 6)
    start = truth.replace(overfocus=1.3e-6)
    result = calibrate(data, start, free=["overfocus"])
    assert result.params.scan_rotation == 30.0 and not result.params.flip_y
    assert result.params.overfocus == pytest.approx(1.1e-6, rel=5e-3)
    lazy = calibrate(da.from_array(data, chunks=(7, 48, 64, 64)), start, free=["overfocus"])
    assert lazy.params.overfocus == pytest.approx(result.params.overfocus, rel=1e-9)


@pytest.mark.parametrize("kind", ["featureless", "noise"])
def test_data_without_specimen_detail_is_reported(kind):
    truth = _truth(1.2e-6, 10.0, False)
    if kind == "featureless":
        data = simulate(np.full((160, 160), 0.7), SCAN, DETECTOR, truth, dose=5e4, seed=1)
    else:
        data = np.random.default_rng(1).poisson(12.0, SCAN + DETECTOR).astype(np.uint16)
    with pytest.raises(CalibrationFailedError, match="featureless or noise|bright-field disk"):
        calibrate(data, truth)


def test_progress_reports_and_can_cancel():
    truth = _truth(1.2e-6, 10.0, False)
    data = _data(truth, 7)
    seen = []
    calibrate(data, truth, progress=lambda f, p: seen.append((f, p)))
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert seen[0][1] is None and isinstance(seen[-1][1], TwinParams)

    def stop(fraction, params):
        if params is not None:
            raise Cancelled

    with pytest.raises(Cancelled):
        calibrate(data, truth, progress=stop)


def test_bad_arguments():
    data = np.zeros((4, 4, 8, 8))
    truth = _truth(1e-6, 0.0, False)
    with pytest.raises(InvalidParameterError, match="semiconv_angle"):
        calibrate(data, truth, free=["semiconv_angle"])
    with pytest.raises(InvalidParameterError, match="TwinParams"):
        calibrate(data, {"overfocus": 1e-6})
    with pytest.raises(CalibrationFailedError, match="uniform"):
        calibrate(data, truth)


@pytest.mark.parametrize("overfocus", [2e-6, -2e-6])
@pytest.mark.parametrize("rotation", [-170.0, -20.0, 45.0, 135.5])
@pytest.mark.parametrize("flip", [False, True])
def test_decompose_inverts_the_twin_matrix(overfocus, rotation, flip):
    p = _truth(overfocus, rotation, flip)
    k, theta, f = decompose(p.matrix, np.sign(overfocus))
    assert k == pytest.approx(p.magnification) and f == flip
    assert _angle_error(theta, rotation) < 1e-9
    assert overfocus_for_magnification(k, p) == pytest.approx(overfocus)


def test_spectral_weights_make_the_shifts_more_precise_without_bias():
    """Pairs of noisy shifted images of a specimen with little fine detail: weighting the
    cross spectra by their signal-to-noise ratio (from the data) locates the shifts about
    twice as precisely as plain cross-correlation, and moves no peak."""
    from scipy import ndimage

    from napari_emcal.overfocus.calibrate.parallax import (
        NoiseSpectrum,
        _cross_spectra,
        _peak_shifts,
        _spectral_weights,
    )
    from napari_emcal.overfocus.calibrate.regions import _Regions

    rng = np.random.default_rng(0)
    n, m = 64, 120
    specimen = ndimage.gaussian_filter(rng.normal(size=(n, n)), 1.5)
    specimen += 0.5 * ndimage.gaussian_filter(rng.normal(size=(n, n)), 6)
    shifts = rng.uniform(-6, 6, size=(m, 2))
    q = np.fft.fftfreq(n)
    spectrum = np.fft.fft2(specimen)
    images = np.stack(
        [
            np.fft.ifft2(spectrum * np.exp(-2j * np.pi * (q[:, None] * y + q[None, :] * x))).real
            for y, x in shifts
        ]
    )
    images = images / images.std() + 1.5 * rng.normal(size=images.shape)
    images -= images.mean(axis=(1, 2), keepdims=True)
    images /= images.std(axis=(1, 2), keepdims=True)
    regions = _Regions(images, np.zeros((m, 2)), np.zeros((m, 2), int), 1)
    pairs = np.array([(i, j) for i in range(m) for j in range(i + 1, min(m, i + 6))])
    truth = shifts[pairs[:, 0]] - shifts[pairs[:, 1]]  # P_j(s) = P_i(s + δ)
    auto = NoiseSpectrum()
    cross = _cross_spectra(regions, pairs, truth, auto)
    weights = _spectral_weights(cross, auto, truth, (n, n))
    assert weights[n // 2, -1] < 0.05 * weights.max()  # no specimen at the highest |q|
    plain = _peak_shifts(cross, (n, n)) - truth
    weighted = _peak_shifts(cross, (n, n), weights) - truth
    rms = lambda e: float(np.sqrt(np.mean(e**2)))  # noqa: E731
    assert rms(weighted) < 0.65 * rms(plain)
    assert np.all(np.abs(weighted.mean(axis=0)) < 3 * rms(weighted) / np.sqrt(len(pairs)) + 0.01)


def test_windowing_kernel_subtracts_the_mean_under_the_window():
    """The compiled windowing equals the plain formula: each image less its mean under its
    own separable window, times that window."""
    from napari_emcal.overfocus.calibrate.parallax import _hann, _window_images

    rng = np.random.default_rng(3)
    images = (rng.normal(size=(7, 24, 20)) + np.arange(20) / 5).astype(np.float32)
    index = np.array([4, 0, 4, 6, 2])
    centres = np.stack([rng.uniform(8, 15, 5), rng.uniform(7, 12, 5)], axis=1)
    out = np.empty((5, 24, 20), np.float32)
    _window_images(images, index, centres, np.array([18.0, 14.0]), out)
    rows, columns = _hann(24, centres[:, 0], 18), _hann(20, centres[:, 1], 14)
    windows = rows[:, :, None] * columns[:, None, :]
    picked = images[index].astype(np.float64)
    mean = (picked * windows).sum(axis=(1, 2), keepdims=True) / windows.sum(axis=(1, 2))[
        :, None, None
    ]
    np.testing.assert_allclose(out, (picked - mean) * windows, atol=1e-5)


def test_refinement_score_derivatives_match_finite_differences():
    """The refinement's Newton steps use the pair coherence's exact gradient and Hessian
    with respect to rotation and log-magnification: they agree with finite differences of
    the score."""
    from scipy import ndimage

    from napari_emcal.geometry import rotation_flip_matrix
    from napari_emcal.overfocus.calibrate.parallax import _pairs
    from napari_emcal.overfocus.calibrate.refine import _PairCoherence
    from napari_emcal.overfocus.calibrate.regions import _Regions

    rng = np.random.default_rng(1)
    n = 48
    specimen = ndimage.gaussian_filter(rng.normal(size=(n, n)), 1.2)
    grid = np.array([(i, j) for i in range(6) for j in range(6)])
    centroids = 4.0 * grid + rng.uniform(-0.5, 0.5, grid.shape)

    def matrix(theta, u):  # M = e^u R(θ), θ in degrees
        return np.exp(u) * rotation_flip_matrix(theta, False)

    truth = matrix(20.0, np.log(0.6))
    q = np.fft.fftfreq(n)
    spectrum = np.fft.fft2(specimen)
    images = np.stack(
        [
            np.fft.ifft2(spectrum * np.exp(-2j * np.pi * (q[:, None] * y + q[None, :] * x))).real
            for y, x in centroids @ truth.T
        ]
    )
    images += 0.3 * rng.normal(size=images.shape)
    images = ((images - images.mean()) / images.std()).astype(np.float32)
    regions = _Regions(images, centroids, grid, 4)
    pairs = _pairs(grid, 2)
    dd = centroids[pairs[:, 1]] - centroids[pairs[:, 0]]
    coherence = _PairCoherence(regions, pairs, dd @ truth.T)
    theta, u = 20.03, np.log(0.6) + 0.004  # near the optimum, not on it
    m = matrix(theta, u)
    turned = matrix(theta + 90.0, u) * np.radians(1.0)
    value, gradient, hessian = coherence.derivatives(
        m, [turned, m], [[-m * np.radians(1.0) ** 2, turned], [turned, m]]
    )
    assert value == pytest.approx(coherence(m), rel=1e-6)

    def score(dt, du):
        return coherence(matrix(theta + dt, u + du))

    h = (0.5, 0.01)  # large enough for differences well above single precision
    numeric = [
        (score(h[0], 0) - score(-h[0], 0)) / (2 * h[0]),
        (score(0, h[1]) - score(0, -h[1])) / (2 * h[1]),
    ]
    np.testing.assert_allclose(gradient, numeric, rtol=0.03)
    curvature = [
        (score(h[0], 0) - 2 * value + score(-h[0], 0)) / h[0] ** 2,
        (score(0, h[1]) - 2 * value + score(0, -h[1])) / h[1] ** 2,
    ]
    np.testing.assert_allclose(np.diag(hessian), curvature, rtol=0.03)
    assert np.all(np.linalg.eigvalsh(hessian) < 0)  # a maximum nearby
