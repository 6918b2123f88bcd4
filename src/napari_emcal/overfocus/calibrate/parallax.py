"""Parallax between detector regions: the cross spectra of pairs of point images windowed
on their common specimen, the spectral weights (signal-to-noise ratio per frequency,
measured on the data), the sub-pixel peak shifts, the robust fit of the matrix ``M`` to
them, and its decomposition into ``k``, rotation and flip."""

from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numba
import numpy as np
from scipy import fft

from ...errors import CalibrationFailedError
from ...geometry import wrap_angle
from ..twin import TwinParams
from .regions import _Regions

#: A shift measured between two regions must agree with the fit to this many scan pixels.
INLIER_PX = 0.75
#: The pairs' spectral weights (signal-to-noise ratio per frequency) are measured on at
#: most this many pairs.
WEIGHT_PAIRS = 1024
#: Region pairs a fit or the refinement uses at most (memory: about 17 kB each at 64 x 64).
MAX_PAIRS = 6000
#: Rounds of the robust fit at most (each drops the pairs far from the last fit).
FIT_ROUNDS = 10
#: Random triples of pairs tried for the consensus start of the robust fit, and the pairs
#: each is scored on at most (with 40 % of the pairs in agreement, 256 triples miss every
#: agreeing triple with a chance of 1e-7).
CONSENSUS_SAMPLES, CONSENSUS_PAIRS = 256, 1000
#: The consensus start is tried when the other starts leave fewer pairs than this share
#: in agreement.
CONSENSUS_BELOW = 0.9
#: The noise floor of the images' power is measured beyond this spatial frequency
#: (cycles per scan px), and a repeat is looked for only where the rest holds at least
#: this share of the power.
NOISE_FLOOR_Q, MIN_REPEAT_SIGNAL = 0.4, 0.1
#: Pairs whose spectra are computed together (bounds the memory of one FFT).
FFT_BLOCK = 256
#: A pair is used when its predicted shift leaves its images this much of the scan per
#: axis in common (60 %).
MAX_PAIR_SHIFT = 0.4


@dataclass
class NoiseSpectrum:
    """The regions' images' power per frequency (the noise level of the cross spectra),
    collected by :func:`_cross_spectra` block by block on pairs spread over the disk."""

    sums: list[np.ndarray] = field(default_factory=list)  # summed power of each block
    counts: list[int] = field(default_factory=list)  # pairs in each block

    def add(self, power_sum: np.ndarray, count: int) -> None:
        self.sums.append(power_sum)
        self.counts.append(count)

    @property
    def power(self) -> np.ndarray:
        """The mean power per pair image, (sy, sx // 2 + 1)."""
        return np.sum(self.sums, axis=0) / sum(self.counts)


def _pairs(grid: np.ndarray, reach: int) -> np.ndarray:
    """Index pairs (i, j) of regions at most ``reach`` grid steps apart, each pair once."""
    grid = np.asarray(grid, dtype=np.intp).reshape(-1, 2)
    offsets = np.array(
        [
            (di, dj)
            for di in range(reach + 1)
            for dj in range(-reach, reach + 1)
            if (di, dj) > (0, 0)
        ],
        dtype=np.intp,
    ).reshape(-1, 2)
    if not len(grid) or not len(offsets):
        return np.zeros((0, 2), dtype=int)
    # region number at each grid cell (-1: none), padded so that every offset stays inside
    low = grid.min(axis=0)
    table = np.full(tuple(grid.max(axis=0) - low + 2 * reach + 1), -1, dtype=np.intp)
    cells = grid - low + reach
    table[cells[:, 0], cells[:, 1]] = np.arange(len(grid))
    other = cells[:, None, :] + offsets[None, :, :]  # (regions, offsets, 2)
    partner = table[other[..., 0], other[..., 1]]
    first = np.broadcast_to(np.arange(len(grid))[:, None], partner.shape)
    found = partner >= 0
    return np.stack([first[found], partner[found]], axis=1).astype(int)


def _blocks_in_threads(work, starts) -> list:
    """``[work(start) for start in starts]``, the blocks shared among numba's threads
    (the windowing, the FFTs and the products release the GIL)."""
    starts = list(starts)
    threads = min(numba.get_num_threads(), len(starts))
    if threads <= 1:
        return [work(start) for start in starts]
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(work, starts))


def _hann(n: int, centre: np.ndarray, width: float) -> np.ndarray:
    """Hann windows of ``width`` px centred at ``centre`` (m,) on a grid of n px: (m, n)."""
    u = np.arange(n)[None, :] - centre[:, None]
    return np.where(np.abs(u) < width / 2, 0.5 * (1 + np.cos(2 * np.pi * u / width)), 0.0)


def _cross_spectra(
    regions: _Regions,
    pairs: np.ndarray,
    predicted: np.ndarray,
    noise: NoiseSpectrum | None = None,
) -> np.ndarray:
    """Cross spectra ``F_i · conj(F_j)`` of each pair, windowed on their common region.

    ``P_j(s) = P_i(s + δ)`` with ``δ = M (d_j − d_i)``. Each image is windowed around
    where the pair's common specimen region lies, using the ``predicted`` shifts δ, so
    that both windows cover the same specimen: the correlation peak is then not pulled
    towards zero shift by the window (only by the error of the prediction). With ``noise``,
    the images' power is collected into it as well.
    """
    sy, sx = regions.images.shape[1:]
    reach = np.abs(predicted).max(axis=0) if len(predicted) else np.zeros(2)
    width = np.maximum([sy / 2, sx / 2], np.array([sy, sx]) - reach)
    centre = np.array([(sy - 1) / 2, (sx - 1) / 2])
    # single precision: twice as fast, and ample for images of unit variance
    out = np.empty((len(pairs), sy, sx // 2 + 1), np.complex64)
    step = max(1, len(pairs) // WEIGHT_PAIRS)  # the pairs whose power is collected
    buffers = threading.local()

    def block(start):
        sl = slice(start, start + FFT_BLOCK)
        p, half = pairs[sl], predicted[sl] / 2
        if not hasattr(buffers, "windowed"):
            buffers.windowed = np.empty((2, min(FFT_BLOCK, len(pairs)), sy, sx), np.float32)
        windowed = buffers.windowed[:, : len(p)]
        for side, sign in ((0, 1.0), (1, -1.0)):
            _window_images(regions.images, p[:, side], centre + sign * half, width, windowed[side])
        fi, fj = fft.rfft2(windowed, workers=1)
        if noise is not None:  # the images' power (the noise level), on pairs spread out
            a, b = fi[::step], fj[::step]
            power = a.real**2 + a.imag**2 + b.real**2 + b.imag**2
            collected = (np.sum(power, axis=0) / 2, len(a))
        np.multiply(fi, np.conjugate(fj, out=fj), out=out[sl])
        return collected if noise is not None else None

    for collected in _blocks_in_threads(block, range(0, len(pairs), FFT_BLOCK)):
        if collected is not None:
            noise.add(*collected)
    return out


def _spectral_weights(
    cross: np.ndarray, noise: NoiseSpectrum, predicted: np.ndarray, shape
) -> np.ndarray:
    """Weights per spatial frequency that make the pair cross-correlations statistically
    efficient, from the data themselves.

    A pair's cross spectrum is ``|S(q)|²`` (the specimen's power, turned by the shift)
    plus noise of variance about ``2 σ²(q) |S(q)|² + σ⁴(q)``. The maximum-likelihood
    weighting of generalised cross correlation keeps the frequencies where the specimen
    stands above the noise and does not let the strong low frequencies, which locate a
    shift poorly, dominate: the weight is the expected cross spectrum over its variance,
    ``|S|² / (2σ²|S|² + σ⁴)`` (zero where nothing is coherent). ``|S|²`` is the part of
    the mean cross spectrum coherent with the ``predicted`` shifts, ``σ²`` the rest of the
    images' mean power (``noise``, as :func:`_cross_spectra` collects it);
    both are averaged over rings of equal ``|q|``. The weights are real and even in ``q``,
    so they change no peak position.
    """
    sy, sx = shape
    qy, qx = np.fft.fftfreq(sy), np.fft.rfftfreq(sx)
    # ring averages need no more than WEIGHT_PAIRS pairs, spread over the disk
    step = max(1, len(cross) // WEIGHT_PAIRS)
    picked = np.arange(0, len(cross), step)
    coherent = np.zeros((sy, sx // 2 + 1))
    for start in range(0, len(picked), FFT_BLOCK):
        index = picked[start : start + FFT_BLOCK]
        d = predicted[index]
        ey = np.exp(2j * np.pi * d[:, :1] * qy)  # (n, sy): separable, fewer exponentials
        ex = np.exp(2j * np.pi * d[:, 1:] * qx)  # (n, sx // 2 + 1)
        turned = cross[index] * ey[:, :, None] * ex[:, None, :]
        coherent += np.sum(turned.real, axis=0)
    coherent /= len(picked)
    power = noise.power
    radius = np.hypot(qy[:, None], qx[None, :])
    rings = np.minimum((radius * 2 * min(sy, sx)).astype(int), min(sy, sx))
    count = np.bincount(rings.ravel())

    def ring(values):
        return (np.bincount(rings.ravel(), values.ravel()) / np.maximum(count, 1))[rings]

    signal = np.clip(ring(coherent), 0.0, None)
    total = ring(power)
    noise = np.maximum(total - signal, 1e-3 * total.max())
    weights = signal / (2 * noise * signal + noise**2)  # E[C] / Var(C)
    return weights / max(weights.max(), 1e-300)


@numba.njit(nogil=True, cache=True)
def _fill_hann(window, centre, width):  # pragma: no cover - compiled
    """:func:`_hann` of one window, into ``window``."""
    for i in range(len(window)):
        u = i - centre
        window[i] = 0.5 * (1 + np.cos(2 * np.pi * u / width)) if abs(u) < width / 2 else 0.0


@numba.njit(nogil=True, cache=True)
def _window_images(images, index, centres, width, out):  # pragma: no cover - compiled
    """``images[index]`` less their mean under each window, times the window, into ``out``.

    Each window is the separable product of :func:`_hann` windows of ``width`` (2,) px
    centred at ``centres[n]`` (y, x). The mean is taken under the window, not over the
    image: two regions' images of the same specimen area then stay exact shifts of each
    other (the whole image's mean differs between regions that see different parts of a
    specimen with large structures). One pass over each image, the mean in double
    precision.
    """
    sy, sx = images.shape[1:]
    wy, wx = np.empty(sy, np.float32), np.empty(sx, np.float32)
    for n in range(len(index)):
        _fill_hann(wy, centres[n, 0], width[0])
        _fill_hann(wx, centres[n, 1], width[1])
        image = images[index[n]]
        total = 0.0
        for y in range(sy):
            line = 0.0
            for x in range(sx):
                line += image[y, x] * wx[x]
            total += line * wy[y]
        weight = wy.astype(np.float64).sum() * wx.astype(np.float64).sum()
        mean = np.float32(total / max(weight, 1e-30))
        for y in range(sy):
            for x in range(sx):
                out[n, y, x] = (image[y, x] - mean) * (wy[y] * wx[x])


def _peak_shifts(cross: np.ndarray, shape, weights=None) -> np.ndarray:
    """Position of the cross-correlation peak of each cross spectrum (sub-pixel), (n, 2).

    ``irfft2(F_i conj(F_j))(τ) = Σ_s P_i(s + τ) P_j(s)`` peaks at ``τ = δ``; a parabola
    through the peak and its neighbours gives the sub-pixel position.
    """
    sy, sx = shape
    shifts = np.empty((len(cross), 2))
    if weights is not None:  # single precision, as the spectra: half the inverse FFTs' work
        weights = np.asarray(weights, np.float32)

    def peaks(start):
        block = cross[start : start + FFT_BLOCK]
        if weights is not None:
            block = block * weights
        corr = fft.irfft2(block, s=(sy, sx), workers=1)
        n = np.arange(len(corr))
        py, px = np.divmod(np.argmax(corr.reshape(len(corr), -1), axis=1), sx)
        peak = corr[n, py, px]
        shifts[start : start + len(corr)] = np.stack(
            [
                py + _vertex(corr[n, (py - 1) % sy, px], peak, corr[n, (py + 1) % sy, px]),
                px + _vertex(corr[n, py, (px - 1) % sx], peak, corr[n, py, (px + 1) % sx]),
            ],
            axis=1,
        )

    _blocks_in_threads(peaks, range(0, len(cross), FFT_BLOCK))
    shifts[:, 0] = (shifts[:, 0] + sy / 2) % sy - sy / 2
    shifts[:, 1] = (shifts[:, 1] + sx / 2) % sx - sx / 2
    return shifts


def _vertex(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Offset of the vertex of the parabola through (-1, a), (0, b), (1, c), within ±0.5;
    0 where the three do not make a maximum."""
    denom = a - 2 * b + c
    safe = np.where(denom < 0, denom, -1.0)
    return np.where(denom < 0, np.clip(0.5 * (a - c) / safe, -0.5, 0.5), 0.0)


def _refit(dd: np.ndarray, ds: np.ndarray, inliers: np.ndarray):
    """Least squares on ``inliers``, then repeatedly on the pairs near the last fit:
    (M, inlier mask, rms residual in scan px)."""
    for _ in range(FIT_ROUNDS):
        if inliers.sum() < 3:
            break
        mt, *_ = np.linalg.lstsq(dd[inliers], ds[inliers], rcond=None)
        residual = np.linalg.norm(ds - dd @ mt, axis=1)
        mad = np.median(residual[inliers])
        # within 3 robust sigmas, but never stricter than INLIER_PX or looser than 3x it
        new = residual <= min(3 * INLIER_PX, max(INLIER_PX, 3.0 * 1.4826 * mad))
        if np.array_equal(new, inliers):
            break
        inliers = new
    if inliers.sum() < 3:
        return np.zeros((2, 2)), np.zeros(len(dd), bool), float("inf")
    mt, *_ = np.linalg.lstsq(dd[inliers], ds[inliers], rcond=None)
    residual = np.linalg.norm(ds - dd @ mt, axis=1)
    rms = float(np.sqrt(np.mean(residual[inliers] ** 2))) if inliers.any() else float("inf")
    return mt.T, inliers, rms


def _consensus(dd: np.ndarray, ds: np.ndarray) -> np.ndarray:
    """The pairs within 3 INLIER_PX of the matrix fitted to the best of CONSENSUS_SAMPLES
    random triples of pairs (the one most pairs agree with, counted on at most
    CONSENSUS_PAIRS of them)."""
    n = len(dd)
    rng = np.random.default_rng(0)  # reproducible
    triples = rng.integers(0, n, (CONSENSUS_SAMPLES, 3))
    a, b = dd[triples], ds[triples]  # (m, 3, 2)
    # each triple's least squares M^T = (A^T A)^-1 A^T B
    ata = np.matmul(a.transpose(0, 2, 1), a)
    atb = np.matmul(a.transpose(0, 2, 1), b)
    ok = np.abs(np.linalg.det(ata)) > 1e-9 * np.trace(ata, axis1=1, axis2=2) ** 2
    if not ok.any():
        return np.ones(n, bool)
    mts = np.linalg.solve(ata[ok], atb[ok])  # (m', 2, 2)
    scored = rng.choice(n, CONSENSUS_PAIRS, replace=False) if n > CONSENSUS_PAIRS else slice(None)
    residual = np.linalg.norm(ds[scored][None] - np.matmul(dd[scored][None], mts), axis=2)
    best = mts[int(np.argmax(np.count_nonzero(residual <= 3 * INLIER_PX, axis=1)))]
    return np.linalg.norm(ds - dd @ best, axis=1) <= 3 * INLIER_PX


def _fit_matrix(dd: np.ndarray, ds: np.ndarray, previous: np.ndarray | None = None):
    """Robust least squares ``ds ≈ M dd``: (M, inlier mask, rms residual in scan px).

    Pairs whose windows hold no specimen detail (a sparse specimen, large flat areas)
    give shifts anywhere, and an ordinary least-squares start on all pairs can lead the
    trimming to a wrong subset. The trimming starts from all pairs and from the pairs near
    the ``previous`` fit, and, where those leave many pairs out, from the best consensus of
    random triples of pairs; the result with the most pairs in agreement is kept (ties:
    the smaller residual).
    """
    starts = [np.ones(len(dd), bool)]
    if previous is not None and np.any(previous):
        residual = np.linalg.norm(ds - dd @ np.asarray(previous).T, axis=1)
        starts.append(residual <= 3 * INLIER_PX)
    best = None
    for inliers in starts:
        fit = _refit(dd, ds, inliers)
        if best is None or (fit[1].sum(), -fit[2]) > (best[1].sum(), -best[2]):
            best = fit
    if best[1].mean() < CONSENSUS_BELOW:  # many pairs disagree: try the consensus too
        fit = _refit(dd, ds, _consensus(dd, ds))
        if (fit[1].sum(), -fit[2]) > (best[1].sum(), -best[2]):
            best = fit
    return best


def decompose(matrix: np.ndarray, overfocus_sign: float = 1.0, flip_y: bool | None = None):
    """``(k, scan_rotation °, flip_y)`` of the closest ``k · R(θ) · F`` to ``matrix``.

    ``flip_y`` is the sign of ``det(matrix)`` unless given. ``k`` takes the sign
    ``overfocus_sign``; a negative ``k`` turns the rotation by 180°.
    """
    flip = bool(np.linalg.det(matrix) < 0) if flip_y is None else bool(flip_y)
    m = matrix @ np.diag([-1.0, 1.0]) if flip else matrix  # ≈ k R(θ) = k [[c, s], [-s, c]]
    a = 0.5 * (m[0, 0] + m[1, 1])
    b = 0.5 * (m[0, 1] - m[1, 0])
    k = math.hypot(a, b)
    theta = math.degrees(math.atan2(b, a))
    if overfocus_sign < 0:
        k, theta = -k, theta + 180.0
    return k, wrap_angle(theta), flip


def overfocus_for_magnification(k: float, params: TwinParams) -> float:
    """The overfocus (m) that gives magnification ``k`` with the other lengths of ``params``.

    Inverts ``k = p · f / ((f + L) · s)``: ``f = k s L / (p − k s)``.
    """
    s, p, L = params.scan_pixel_size, params.detector_pixel_size, params.camera_length
    denom = p - k * s
    if denom == 0:
        raise CalibrationFailedError(
            "The measured magnification puts the crossover on the detector."
        )
    return k * s * L / denom


def _usable(pairs, predicted, scan_shape) -> np.ndarray:
    """Pairs whose predicted shift leaves enough common area (MAX_PAIR_SHIFT per axis)."""
    return np.all(np.abs(predicted) <= MAX_PAIR_SHIFT * np.asarray(scan_shape), axis=1)


def _repeat(images: np.ndarray) -> tuple[float, np.ndarray]:
    """How nearly the point images repeat under a translation, and by which one.

    The regions' mean autocorrelation (each image windowed, less its windowed mean, its
    power less the white-noise floor, and the result divided by the window's own
    autocorrelation so that far lags are not damped), normalised to 1 at zero lag. Returns
    the highest secondary maximum that is a peak of its own (the autocorrelation falls
    below half of it on the way from zero lag) and the shortest lag (dy, dx, scan px) of
    those nearly as high (a lattice's period); 0 and (0, 0) when there is none, or when
    the images hold (almost) nothing but noise.
    """
    n, sy, sx = images.shape
    window = np.outer(np.hanning(sy), np.hanning(sx))
    norm = window.sum()
    power = np.zeros((sy, sx // 2 + 1))
    for start in range(0, n, FFT_BLOCK):
        block = images[start : start + FFT_BLOCK].astype(np.float64)
        mean = (block * window).sum(axis=(1, 2), keepdims=True) / norm
        f = fft.rfft2((block - mean) * window, workers=-1)
        power += np.sum(f.real**2 + f.imag**2, axis=0)
    # white noise (shot noise) adds a flat floor to the power, a spike at zero lag that
    # would hide a lattice's repeat: the floor is the median power at the highest
    # frequencies, where a specimen imaged through the detector regions has little
    qy, qx = np.fft.fftfreq(sy), np.fft.rfftfreq(sx)
    floor = np.median(power[np.hypot(qy[:, None], qx[None, :]) > NOISE_FLOOR_Q])
    total = power.sum()
    power = power - floor
    if not power.sum() >= MIN_REPEAT_SIGNAL * total:  # (almost) nothing but noise
        return 0.0, np.zeros(2)
    auto = fft.irfft2(power, s=(sy, sx), workers=-1)
    wf = fft.rfft2(window)
    envelope = fft.irfft2(wf.real**2 + wf.imag**2, s=(sy, sx))
    valid = envelope > 0.25 * envelope[0, 0]
    auto = np.where(valid, auto / np.where(valid, envelope, 1.0), 0.0)
    if not auto[0, 0] > 0:
        return 0.0, np.zeros(2)
    auto = np.fft.fftshift(auto / auto[0, 0])
    cy, cx = sy // 2, sx // 2
    peak = np.ones_like(auto, bool)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy or dx:
                peak &= auto > np.roll(auto, (dy, dx), axis=(0, 1))
    peak[cy, cx] = False
    found = []  # (height, lag) of the secondary maxima that are peaks of their own
    for y, x in np.argwhere(peak):
        steps = max(abs(y - cy), abs(x - cx)) + 1
        line = auto[
            np.linspace(cy, y, 2 * steps).round().astype(int),
            np.linspace(cx, x, 2 * steps).round().astype(int),
        ]
        if line.min() < 0.5 * auto[y, x]:
            found.append((float(auto[y, x]), np.array([y - cy, x - cx], float)))
    best = max((height for height, _ in found), default=0.0)
    if best <= 0:
        return 0.0, np.zeros(2)
    # a lattice's shortest period, not the lag that falls best on the pixel grid
    period = min((lag for height, lag in found if height >= 0.8 * best), key=np.linalg.norm)
    return best, period
