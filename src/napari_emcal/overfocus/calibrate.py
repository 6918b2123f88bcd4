"""Automatic calibration of the twin: direct estimate, then refinement to the sharpest image.

The physics used (docs/conventions.md): detector pixel ``d`` at scan position ``s`` sees the
specimen at ``t = s + M (d − c)`` with ``M = k · R(θ) · F``. So the *point image* of a
detector region (the sum of its pixels over the scan) is the specimen shifted by
``M (d_i − c)``: two regions' point images differ by the shift ``M (d_j − d_i)``. This is
the parallax of tilt-corrected bright-field STEM.

1. **Direct estimate** (:func:`estimate`). Sum the detector into regions inside the
   bright-field disk, measure the shift between the point images of nearby regions by
   cross-correlation, and fit the 2x2 matrix ``M`` to all shifts by robust least squares.
   Each pair is windowed on its common specimen region (predicted by the previous fit),
   so the window does not pull the peaks towards zero shift, and each spatial frequency
   of the cross spectra is weighted by its signal-to-noise ratio, measured on the data
   (:func:`_spectral_weights`): at a few electrons per detector pixel this made the
   rotation and overfocus 3-5 times more precise than plain cross-correlation, whose
   strong low frequencies locate a shift poorly. A region's plain sum blurs its image
   over ``|k|`` scan pixels per detector pixel of its side; once a first fit shows more
   than SHARPEN_BLUR_PX of blur, each pixel's image is placed at ``M (d − c_r)`` from its
   region's centroid before adding (:func:`_sharp_regions`, the tilt correction of tcBF
   within each region) and the fit is repeated on those sharp images: at high shadow
   magnification and a few electrons per pixel this made the rotation 2-3 times more
   precise. ``det M < 0`` means
   ``flip_y``; the rotation and ``|k|`` follow from the similarity part of ``M``. No start
   value of rotation or flip is needed. The beam centre is the centre of the disk.
2. **Refinement** (:func:`calibrate`). Maximise the sharpness of ``shifted_sum``, the sum
   of the point images shifted back by ``M (d_i − c)``. Its power is a constant plus the
   cross-correlations of all pairs at their predicted shifts; the refinement maximises
   the pair-averaged correlation coefficient, each evaluated at the exact, continuous
   shift from the cross spectrum (no interpolation, so no bias towards whole-pixel
   shifts as nearest-neighbour or bilinear sampling would give), with Nelder-Mead over
   rotation and ``log k``, then once more with the windows re-centred on the optimum.
   What blur remains in a region's image (from its plain sum, or from the error of the
   ``M`` it was sharpened with) is symmetric about the region's centroid, which lowers
   the peak but does not move it.

``shifted_sum`` does not depend on the beam centre except for a translation, so the
centre comes from the bright-field disk, not from the sharpness. ``k`` and a rotation by
180° cannot be told apart by the data (over- and underfocus look alike), so the sign of
the start's overfocus is kept.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numba
import numpy as np
from scipy import fft, ndimage, optimize
from skimage.morphology import convex_hull_image

from ..engine import Buffer, FramePass, native_contiguous, reduce_data, validate_4d
from ..engine.passes import run_local
from ..errors import CalibrationFailedError, InvalidDataError, InvalidParameterError
from ..geometry import wrap_angle
from .kernels import ShiftPlan, plan_from_offsets, splat_frames
from .twin import TwinParams

__all__ = ["CalibrationResult", "FREE_PARAMETERS", "calibrate", "estimate", "history_values"]

#: Parameters :func:`calibrate` can determine.
FREE_PARAMETERS = ("scan_rotation", "flip_y", "overfocus", "cy", "cx")
#: At most this many scan positions per axis are used (a central crop: same scan step).
MAX_SCAN = 128
#: Regions across the bright-field disk diameter for the direct estimate.
ESTIMATE_REGIONS = 12
#: The direct estimate's passes at most, and the relative change of the fitted matrix
#: below which it has converged.
DIRECT_PASSES = 16
DIRECT_TOLERANCE = 2e-5
#: A shift measured between two regions must agree with the fit to this many scan pixels.
INLIER_PX = 0.75
#: The pairs' spectral weights (signal-to-noise ratio per frequency) are measured on at
#: most this many pairs.
WEIGHT_PAIRS = 1024
#: Region pairs the refinement uses at most (memory: about 17 kB each at 64 x 64).
MAX_PAIRS = 6000
#: Below this pair-averaged correlation at the optimum the data do not determine the twin.
MIN_SCORE = 0.2
#: Regions whose images a first fit shows blurred over more scan pixels than this are
#: sharpened (:func:`_sharp_regions`) and fitted again.
SHARPEN_BLUR_PX = 1.0
#: Memory for the sharpened regions' accumulators (bytes), which bounds the threads used.
SHARP_BUFFER_BYTES = 512 * 2**20
#: Bootstrap resamples of the detector regions for the standard errors, and the margin
#: (in standard errors) the handedness must have to be decided.
BOOTSTRAP_ROUNDS = 200
MIN_FLIP_MARGIN = 3.0
#: A floor for the method's systematic error, added in quadrature to the standard errors:
#: the largest errors left without noise on area-integrating simulations over |k| 0.2-2.5
#: and 64²-256² detectors with detail finer than the scan step (0.006° and 0.021 % since
#: the regions are sharpened: 0.01° and 0.02 %, benchmarks/bench_overfocus_shadow.py).
SYSTEMATIC_ROTATION_DEG = 0.01
SYSTEMATIC_OVERFOCUS = 0.0002

Progress = Callable[[float, "TwinParams | None"], object]


@dataclass
class CalibrationResult:
    """Outcome of :func:`calibrate`.

    Attributes
    ----------
    params : TwinParams
        The calibrated parameters.
    score : float
        Mean spectral coherence of ``shifted_sum`` at ``params`` (0..1, higher is sharper;
        about ``1 / n_regions`` for data without a common specimen).
    n_evaluations : int
        Number of sharpness evaluations.
    history : list of (TwinParams, float)
        Every evaluated parameter set and its score, in order.
    estimate : TwinParams
        The direct estimate the refinement started from.
    start : TwinParams
        The start given.
    details : dict
        Diagnostics: the fitted matrix, inlier count and residual of the direct
        estimate, detector binnings used, region counts, time taken (s).
    """

    params: TwinParams
    score: float
    n_evaluations: int
    history: list[tuple[TwinParams, float]]
    estimate: TwinParams
    start: TwinParams
    details: dict = field(default_factory=dict)
    #: Standard errors of the free parameters, in their API units (degrees for
    #: ``scan_rotation``, m for ``overfocus``, detector pixels for ``cy``/``cx``), from a
    #: bootstrap over detector regions.
    uncertainty: dict = field(default_factory=dict)
    #: How clearly the data choose the handedness: |det M| in standard errors of the
    #: bootstrap (the other handedness flips its sign). None when ``flip_y`` was not free.
    flip_margin: float | None = None


# -- reading ---------------------------------------------------------------------------
#: Frames (spread over the scan) averaged to find the bright-field disk.
DISK_FRAMES = 64
#: A 5th percentile of the mean frame above this fraction of its bright level is not dark.
DARK_FRACTION = 0.25
#: Scan positions needed along each axis to measure the parallax between detector regions.
MIN_SCAN = 8
#: The fitted shifts between regions must reach this many scan pixels, and this many times
#: their scatter about the fit, for the parallax to be measured (else: not overfocused).
MIN_PARALLAX_PX = 0.5
PARALLAX_SIGNIFICANCE = 5.0


@dataclass
class _Disk:
    """The bright-field disk in full detector pixels."""

    mean_frame: np.ndarray  # (dy, dx) float64, mean of DISK_FRAMES frames
    mask: np.ndarray  # bool (dy, dx): the disk (convex, shadows inside it included)
    illumination: np.ndarray  # (dy, dx) float64 in [0, 1]: each pixel's share of the beam
    centre: np.ndarray  # (cy, cx), centroid of the illumination
    radius: float


def _central_crop(data):
    """At most MAX_SCAN x MAX_SCAN scan positions from the middle (same scan step)."""
    sy, sx = data.shape[:2]
    y0, x0 = max(0, (sy - MAX_SCAN) // 2), max(0, (sx - MAX_SCAN) // 2)
    return data[y0 : y0 + MAX_SCAN, x0 : x0 + MAX_SCAN]


def _find_disk(data) -> _Disk:
    """Bright-field disk of the mean of a few frames spread over the scan."""
    sy, sx = data.shape[:2]
    idx = np.unique(np.linspace(0, sy * sx - 1, min(DISK_FRAMES, sy * sx)).astype(int))
    mean = np.zeros(data.shape[2:], np.float64)
    for i in idx:
        mean += np.asarray(data[i // sx, i % sx], dtype=np.float64)
    mean /= len(idx)
    if not np.isfinite(mean).all():
        bad = np.argwhere(~np.isfinite(mean))
        raise InvalidDataError(
            f"The frames hold NaN or infinite values ({len(bad)} detector pixels of the mean "
            f"of {len(idx)} frames, first at detector pixel {tuple(int(v) for v in bad[0])}): "
            "replace or mask them before calibrating."
        )
    smooth = ndimage.gaussian_filter(mean, 1.0)
    lo, hi = np.percentile(smooth, [5, 99.5])
    if not hi > lo:
        raise CalibrationFailedError("The frames are uniform: there is no bright-field disk.")
    # Half way between dark and bright. Where the 5th percentile is itself well lit the
    # disk fills the detector, and the spread above it is the specimen's shadow: take
    # the dark level as zero then.
    dark = lo if lo < DARK_FRACTION * hi else 0.0
    mask = smooth > 0.5 * (dark + hi)
    labels, n = ndimage.label(mask)
    if n > 1:  # keep the largest bright region
        sizes = ndimage.sum(mask, labels, range(1, n + 1))
        mask = labels == 1 + int(np.argmax(sizes))
    # The mean of a few frames still shows the specimen's shadow where the specimen has
    # structure as large as the scan: the disk is the convex hull of the bright region.
    mask = convex_hull_image(mask)
    illumination = _illumination(mean, mask)
    # the disk's geometric centre: an intensity centroid would follow the specimen's shadow
    centre = np.array(ndimage.center_of_mass(illumination))
    return _Disk(mean, mask, illumination, centre, math.sqrt(mask.sum() / math.pi))


#: Detector pixels on either side of the disk's edge whose share of the beam is measured.
EDGE_BAND_PX = 2


def _illumination(mean: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Each detector pixel's share of the beam, 0..1.

    A region's point image is the plain sum of its pixels' specimen images weighted by
    the *illumination* of each pixel, not by the mean frame, which also holds the
    specimen's shadow (weighting by it moved the centroids, hence the fitted rotation and
    magnification, by up to 0.2° and 2 % on specimens with structure as large as the
    scan). Inside the disk the beam is taken as uniform; only the band along the edge,
    where a pixel is partly lit, is weighted by its brightness relative to the disk.
    """
    interior = ndimage.binary_erosion(mask, iterations=EDGE_BAND_PX)
    band = ndimage.binary_dilation(mask, iterations=EDGE_BAND_PX) & ~interior
    level = np.percentile(mean[mask], 90) if mask.any() else 0.0
    out = interior.astype(np.float64)
    if level > 0:
        out[band] = np.clip(mean[band] / level, 0.0, 1.0)
    return out


# -- regions and their point images ------------------------------------------------------
@dataclass
class _Regions:
    """Point images of detector regions (zero mean, unit variance) and their centroids."""

    images: np.ndarray  # (n, sy, sx) float32, zero mean, unit variance
    centroids: np.ndarray  # (n, 2) full detector pixels, intensity weighted
    grid: np.ndarray  # (n, 2) region index (row, column)
    size: int  # full detector pixels per region side


def _regions(data, disk: _Disk, size: int, progress=None) -> _Regions:
    """Point images of ``size x size`` detector regions that lie mostly inside the disk.

    One pass over (a central crop of) the data, summing each region's pixels.
    """
    dy, dx = data.shape[2:]
    ny, nx = (dy // size) * size, (dx // size) * size
    gy, gx = ny // size, nx // size
    lit = disk.illumination[:ny, :nx]
    keep = np.argwhere(lit.reshape(gy, size, gx, size).mean(axis=(1, 3)) >= 0.75)
    if len(keep) < 6:
        raise CalibrationFailedError(
            "The bright-field disk covers too few detector pixels to measure parallax "
            f"({len(keep)} regions of {size} x {size} px)."
        )
    weights = lit.reshape(gy, size, gx, size)
    yy, xx = np.mgrid[:ny, :nx]
    w = weights.sum(axis=(1, 3))[keep[:, 0], keep[:, 1]]
    cy = (yy.reshape(gy, size, gx, size) * weights).sum(axis=(1, 3))[keep[:, 0], keep[:, 1]]
    cx = (xx.reshape(gy, size, gx, size) * weights).sum(axis=(1, 3))[keep[:, 0], keep[:, 1]]
    binned = reduce_data(_central_crop(data), size, 1, progress=progress)
    finite = np.isfinite(binned).all(axis=(2, 3))
    if not finite.all():
        bad = np.argwhere(~finite)
        raise InvalidDataError(
            f"{len(bad)} scan positions hold NaN or infinite values (first at scan position "
            f"{tuple(int(v) for v in bad[0])} of the central crop): replace or exclude them "
            "before calibrating."
        )
    images = np.moveaxis(binned[:, :, keep[:, 0], keep[:, 1]], -1, 0).astype(np.float64)
    return _Regions(_normalised(images), np.stack([cy / w, cx / w], axis=1), keep, size)


def _normalised(images: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance per image, single precision (ample at unit variance)."""
    images = images - images.mean(axis=(1, 2), keepdims=True)
    scale = images.std(axis=(1, 2), keepdims=True)
    return (images / np.where(scale > 0, scale, 1.0)).astype(np.float32)


class _SharpRegionsPass(FramePass):
    """Each region's point image with every pixel's image first shifted onto the region's
    centroid by ``M`` (:func:`_sharp_regions`): the splat kernel with one accumulator per
    region, stacked in one padded buffer."""

    def __init__(self, plan: ShiftPlan, n_acc: int):
        self.plan, self.n_acc = plan, n_acc

    def buffers(self, scan_shape, detector_shape):
        return {"shifted": Buffer("single", (self.n_acc, self.plan.padded_size))}

    def process(self, buffers, frames, scan_y, scan_x, task):
        flat = native_contiguous(frames.reshape(len(frames), -1))
        splat_frames(flat, scan_y, scan_x, self.plan, buffers["shifted"], None, aperture_sum=False)

    def finish(self, buffers, scan_shape, detector_shape, task):
        return buffers["shifted"].sum(axis=0)


def _sharp_regions(data, regions: _Regions, matrix: np.ndarray, progress=None) -> _Regions:
    """The regions' point images without their blur, given an estimate of ``M``.

    A region's plain sum blurs its image over ``|k| · size`` scan pixels (its pixels see
    the specimen at offsets ``M (d − c_r)`` from its centroid ``c_r``), which at high
    shadow magnification leaves little of the detail that locates a shift. Placing each
    pixel's image at ``s + M (d − c_r)`` before adding (bilinear splatting, as the
    overfocus pass) gives the image of a point detector at ``c_r``, sharp where ``M`` is
    right; an error of ``M`` blurs it symmetrically about ``c_r``, which moves no
    correlation peak. Scan positions near the edge are reached by fewer pixels: each image
    is divided by its coverage (the same splat of ones).
    """
    crop = _central_crop(data)
    (sy, sx), (dy, dx) = validate_4d(crop)
    size, n = regions.size, len(regions.images)
    region_of = np.full((dy, dx), -1, np.intp)
    for index, (i, j) in enumerate(regions.grid):
        region_of[i * size : (i + 1) * size, j * size : (j + 1) * size] = index
    group = region_of.ravel()
    keep = group >= 0
    py, px = np.divmod(np.arange(dy * dx), dx)
    offsets = np.zeros((dy * dx, 2))
    offsets[keep] = (
        np.stack([py[keep], px[keep]], axis=1) - regions.centroids[group[keep]]
    ) @ np.asarray(matrix).T
    plan = plan_from_offsets(offsets, keep, (sy, sx), (dy, dx), np.maximum(group, 0), n)
    # one accumulator per thread, each holding every region's image: as many threads as
    # fit in SHARP_BUFFER_BYTES (hundreds of MB each on a large detector at high |k|)
    n_acc = max(1, min(numba.get_num_threads(), SHARP_BUFFER_BYTES // (8 * plan.padded_size)))

    def images_of(frames_source, report=None):
        return plan.crop(run_local(frames_source, _SharpRegionsPass(plan, n_acc), report))

    images = images_of(crop, progress)
    coverage = images_of(np.broadcast_to(np.ones((), np.uint8), (sy, sx, dy, dx)))
    return _Regions(
        _normalised(images / np.maximum(coverage, 1e-3 * coverage.max())),
        regions.centroids,
        regions.grid,
        size,
    )


# -- direct estimate ------------------------------------------------------------------
def _pairs(grid: np.ndarray, reach: int) -> np.ndarray:
    """Index pairs (i, j) of regions at most ``reach`` grid steps apart, each pair once."""
    index = {tuple(g): n for n, g in enumerate(grid)}
    pairs = []
    for n, (i, j) in enumerate(grid):
        for di in range(0, reach + 1):
            for dj in range(-reach, reach + 1):
                if (di, dj) > (0, 0) and (m := index.get((i + di, j + dj))) is not None:
                    pairs.append((n, m))
    return np.array(pairs, dtype=int).reshape(-1, 2)


def _hann(n: int, centre: np.ndarray, width: float) -> np.ndarray:
    """Hann windows of ``width`` px centred at ``centre`` (m,) on a grid of n px: (m, n)."""
    u = np.arange(n)[None, :] - centre[:, None]
    return np.where(np.abs(u) < width / 2, 0.5 * (1 + np.cos(2 * np.pi * u / width)), 0.0)


def _cross_spectra(
    regions: _Regions, pairs: np.ndarray, predicted: np.ndarray, auto: list | None = None
) -> np.ndarray:
    """Cross spectra ``F_i · conj(F_j)`` of each pair, windowed on their common region.

    ``P_j(s) = P_i(s + δ)`` with ``δ = M (d_j − d_i)``. Each image is windowed around
    where the pair's common specimen region lies, using the ``predicted`` shifts δ, so
    that both windows cover the same specimen: the correlation peak is then not pulled
    towards zero shift by the window (only by the error of the prediction).
    """
    sy, sx = regions.images.shape[1:]
    reach = np.abs(predicted).max(axis=0) if len(predicted) else np.zeros(2)
    width = np.maximum([sy / 2, sx / 2], np.array([sy, sx]) - reach)
    centre = np.array([(sy - 1) / 2, (sx - 1) / 2])
    # single precision: twice as fast, and ample for images of unit variance
    out = np.empty((len(pairs), sy, sx // 2 + 1), np.complex64)
    for start in range(0, len(pairs), 256):
        sl = slice(start, start + 256)
        p, half = pairs[sl], predicted[sl] / 2
        wi = (
            _hann(sy, centre[0] + half[:, 0], width[0])[:, :, None]
            * _hann(sx, centre[1] + half[:, 1], width[1])[:, None, :]
        ).astype(np.float32)
        wj = (
            _hann(sy, centre[0] - half[:, 0], width[0])[:, :, None]
            * _hann(sx, centre[1] - half[:, 1], width[1])[:, None, :]
        ).astype(np.float32)
        fi = fft.rfft2(_windowed(regions.images[p[:, 0]], wi), workers=-1)
        fj = fft.rfft2(_windowed(regions.images[p[:, 1]], wj), workers=-1)
        out[sl] = fi * np.conj(fj)
        if auto is not None:  # the images' power (the noise level), on pairs spread out
            step = max(1, len(pairs) // WEIGHT_PAIRS)
            a, b = fi[::step], fj[::step]
            power = a.real**2 + a.imag**2 + b.real**2 + b.imag**2
            auto.append(np.sum(power, axis=0) / 2)
            auto.append(len(a))
    return out


def _spectral_weights(cross: np.ndarray, auto: list, predicted: np.ndarray, shape) -> np.ndarray:
    """Weights per spatial frequency that make the pair cross-correlations statistically
    efficient, from the data themselves.

    A pair's cross spectrum is ``|S(q)|²`` (the specimen's power, turned by the shift)
    plus noise of variance about ``2 σ²(q) |S(q)|² + σ⁴(q)``. The maximum-likelihood
    weighting of generalised cross correlation keeps the frequencies where the specimen
    stands above the noise and does not let the strong low frequencies, which locate a
    shift poorly, dominate: the weight is the expected cross spectrum over its variance,
    ``|S|² / (2σ²|S|² + σ⁴)`` (zero where nothing is coherent). ``|S|²`` is the part of
    the mean cross spectrum coherent with the ``predicted`` shifts, ``σ²`` the rest of the
    images' mean power (``auto`` as :func:`_cross_spectra` collects it: sums and counts);
    both are averaged over rings of equal ``|q|``. The weights are real and even in ``q``,
    so they change no peak position.
    """
    sy, sx = shape
    qy, qx = np.fft.fftfreq(sy), np.fft.rfftfreq(sx)
    # ring averages need no more than WEIGHT_PAIRS pairs, spread over the disk
    step = max(1, len(cross) // WEIGHT_PAIRS)
    picked = np.arange(0, len(cross), step)
    coherent = np.zeros((sy, sx // 2 + 1))
    for start in range(0, len(picked), 256):
        index = picked[start : start + 256]
        d = predicted[index]
        ey = np.exp(2j * np.pi * d[:, :1] * qy)  # (n, sy): separable, fewer exponentials
        ex = np.exp(2j * np.pi * d[:, 1:] * qx)  # (n, sx // 2 + 1)
        turned = cross[index] * ey[:, :, None] * ex[:, None, :]
        coherent += np.sum(turned.real, axis=0)
    coherent /= len(picked)
    power = np.sum(auto[0::2], axis=0) / sum(auto[1::2])
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


def _windowed(images: np.ndarray, windows: np.ndarray) -> np.ndarray:
    """``images`` less their mean under each window, times the window.

    The mean is taken under the window, not over the image: two regions' images of the
    same specimen area then stay exact shifts of each other. (With the whole image's
    mean, which differs between regions that see different parts of a specimen with
    large structures, the shifts came out up to 0.5 scan px short.)
    """
    weight = windows.sum(axis=(1, 2), keepdims=True)
    mean = (images * windows).sum(axis=(1, 2), keepdims=True) / np.maximum(weight, 1e-30)
    return (images - mean) * windows


def _peak_shifts(cross: np.ndarray, shape, weights=None) -> np.ndarray:
    """Position of the cross-correlation peak of each cross spectrum (sub-pixel), (n, 2).

    ``irfft2(F_i conj(F_j))(τ) = Σ_s P_i(s + τ) P_j(s)`` peaks at ``τ = δ``; a parabola
    through the peak and its neighbours gives the sub-pixel position.
    """
    sy, sx = shape
    shifts = np.empty((len(cross), 2))
    for start in range(0, len(cross), 256):
        block = cross[start : start + 256]
        if weights is not None:
            block = block * weights
        corr = fft.irfft2(block, s=(sy, sx), workers=-1)
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
    shifts[:, 0] = (shifts[:, 0] + sy / 2) % sy - sy / 2
    shifts[:, 1] = (shifts[:, 1] + sx / 2) % sx - sx / 2
    return shifts


def _vertex(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Offset of the vertex of the parabola through (-1, a), (0, b), (1, c), within ±0.5;
    0 where the three do not make a maximum."""
    denom = a - 2 * b + c
    safe = np.where(denom < 0, denom, -1.0)
    return np.where(denom < 0, np.clip(0.5 * (a - c) / safe, -0.5, 0.5), 0.0)


def _fit_matrix(dd: np.ndarray, ds: np.ndarray):
    """Robust least squares ``ds ≈ M dd``: (M, inlier mask, rms residual in scan px)."""
    inliers = np.ones(len(dd), bool)
    for _ in range(10):
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
    mt, *_ = np.linalg.lstsq(dd[inliers], ds[inliers], rcond=None)
    residual = np.linalg.norm(ds - dd @ mt, axis=1)
    rms = float(np.sqrt(np.mean(residual[inliers] ** 2))) if inliers.any() else float("inf")
    return mt.T, inliers, rms


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


class _PairCoherence:
    """Sharpness of ``shifted_sum`` as a function of ``M``, from pairs of point images.

    The power of the shifted sum ``Σ_i P_i(s − M(d_i − c))`` is ``Σ_i |P_i|²`` (constant)
    plus ``2 Σ_{i<j}`` the cross-correlation of ``P_i`` and ``P_j`` at the shift
    ``M(d_j − d_i)``. This keeps the pairs whose images overlap well, windows each pair on
    its common specimen region, and evaluates each cross-correlation at the exact,
    continuous shift from the cross spectrum (band-limited interpolation: no bias towards
    whole-pixel shifts, unlike nearest-neighbour or bilinear resampling). Each frequency
    is weighted by its signal-to-noise ratio (:func:`_spectral_weights`), and those the
    weights all but drop are left out of the evaluations. The score is the weighted
    correlation coefficient averaged over pairs: 1 when all agree, about 0 for noise.
    """

    def __init__(self, regions: _Regions, pairs: np.ndarray, predicted: np.ndarray):
        sy, sx = regions.images.shape[1:]
        auto = []
        cross = _cross_spectra(regions, pairs, predicted, auto)
        self.qy, self.qx = np.fft.fftfreq(sy), np.fft.rfftfreq(sx)
        # rfft: columns other than 0 and Nyquist stand for two frequencies
        wx = np.where((self.qx == 0) | (self.qx == 0.5), 1.0, 2.0)
        wx = wx * _spectral_weights(cross, auto, predicted, (sy, sx))
        # frequencies the weights all but drop cost time at every evaluation: cut them
        kept = wx > 1e-2 * wx.max()
        rows, cols = np.flatnonzero(kept.any(axis=1)), np.flatnonzero(kept.any(axis=0))
        cols = np.arange(cols.max() + 1)  # a contiguous block from q_x = 0
        cross, wx = cross[:, rows][:, :, cols], wx[rows][:, cols]
        self.qy, self.qx = self.qy[rows], self.qx[cols]
        self.weighted = np.ascontiguousarray(cross * wx, dtype=np.complex64)
        self.norm = float(np.sum(np.abs(cross) * wx))
        self.dd = regions.centroids[pairs[:, 1]] - regions.centroids[pairs[:, 0]]

    def __call__(self, matrix: np.ndarray) -> float:
        delta = self.dd @ np.asarray(matrix).T
        ey = np.exp(2j * np.pi * delta[:, :1] * self.qy[None, :]).astype(np.complex64)
        ex = np.exp(2j * np.pi * delta[:, 1:] * self.qx[None, :]).astype(np.complex64)
        rows = np.matmul(self.weighted, ex[:, :, None])[:, :, 0]  # BLAS, not einsum
        return float(np.real(np.sum(rows * ey)) / self.norm)


# -- the public functions ---------------------------------------------------------------
def _check_free(free) -> frozenset[str]:
    free = frozenset([free] if isinstance(free, str) else free)
    unknown = free - set(FREE_PARAMETERS)
    if unknown:
        raise InvalidParameterError(
            f"Cannot calibrate {', '.join(sorted(unknown))}; free parameters are chosen "
            f"from {', '.join(FREE_PARAMETERS)}."
        )
    return free


def _region_size(disk: _Disk, start: TwinParams, scan_shape) -> int:
    """Detector pixels per region side: about ESTIMATE_REGIONS across the disk, and small
    enough that neighbouring regions' images are shifted by at most 1/6 of the scan.

    (1/8 while regions were summed plainly, whose images blur with their size; with the
    images sharpened, larger regions hold more electrons: at |k| 2.5 on 128² at 5·10⁴ e⁻
    per frame the rotation error fell from 0.076° to 0.046°, benchmarks/
    bench_overfocus_shadow.py.)"""
    size = max(1, round(2 * disk.radius / ESTIMATE_REGIONS))
    limit = min(scan_shape) / 6 / max(abs(start.magnification), 1e-12)
    return max(1, min(size, int(limit)))


def _usable(pairs, predicted, scan_shape) -> np.ndarray:
    """Pairs whose predicted shift leaves enough common area (60 % per axis)."""
    return np.all(np.abs(predicted) <= 0.4 * np.asarray(scan_shape), axis=1)


class _Calibration:
    """The state shared by the direct estimate and the refinement."""

    def __init__(self, data, start: TwinParams, free: frozenset[str], progress):
        (sy, sx), _ = validate_4d(data)
        if not isinstance(start, TwinParams):
            raise InvalidParameterError(f"start must be a TwinParams, got {type(start).__name__}.")
        self.start, self.free, self.progress = start, free, progress
        self.t0 = time.perf_counter()
        self.data = data
        self.disk = _find_disk(data)
        if min(sy, sx) < MIN_SCAN:
            raise CalibrationFailedError(
                f"The scan has only {sy} x {sx} positions: at least {MIN_SCAN} x {MIN_SCAN} are "
                "needed to measure the parallax between detector regions."
            )
        scan_shape = _central_crop(data).shape[:2]
        size = _region_size(self.disk, start, scan_shape)
        self.regions = _regions(
            data, self.disk, size, progress=lambda f: self.report(0.7 * f, None)
        )
        self.scan_shape = self.regions.images.shape[1:]
        self.details: dict = {"region_size_px": size, "regions": len(self.regions.images)}

    def report(self, fraction: float, params: TwinParams | None) -> None:
        if self.progress is not None:
            self.progress(min(1.0, fraction), params)

    # the twin <-> matrix, honouring which parameters are free
    def params_for(self, matrix: np.ndarray) -> TwinParams:
        sign = 1.0 if self.start.overfocus > 0 else -1.0
        k, theta, flip = decompose(
            matrix, sign, None if "flip_y" in self.free else self.start.flip_y
        )
        changes = {"flip_y": flip}
        if "scan_rotation" in self.free:
            changes["scan_rotation"] = theta
        if "overfocus" in self.free:
            changes["overfocus"] = overfocus_for_magnification(k, self.start)
        if "cy" in self.free:
            changes["cy"] = float(self.disk.centre[0])
        if "cx" in self.free:
            changes["cx"] = float(self.disk.centre[1])
        return self.start.replace(**changes)

    def direct(self) -> TwinParams:
        """Fit ``M`` to the shifts between neighbouring regions' point images; where the
        regions' images are blurred over more than SHARPEN_BLUR_PX scan pixels, fit again
        on their sharpened images (:func:`_sharp_regions`)."""
        params = self._direct(span=(0.7, 0.75), sharpen_at=SHARPEN_BLUR_PX)
        self.details["sharpened"] = params is None
        if params is None:
            self.regions = _sharp_regions(
                self.data, self.regions, self.matrix, lambda f: self.report(0.75, None)
            )
            params = self._direct(self.matrix, span=(0.75, 0.8))
        return params

    def _direct(self, matrix=None, span=(0.7, 0.8), sharpen_at=None) -> TwinParams | None:
        """One direct fit, from scratch or (``matrix``) from an earlier fit of ``M``, with
        progress reported within ``span``. With ``sharpen_at``, stop early and return None
        (``self.matrix`` set) as soon as the fit shows the regions' images blurred over
        more scan pixels than that: their sharpened images will give a better fit."""
        grid, centroids = self.regions.grid, self.regions.centroids
        # with an earlier fit, every pass takes the longer baselines, and the weights are
        # measured on the first and third instead of the second and fourth
        fitted = matrix is not None
        matrix = np.zeros((2, 2)) if matrix is None else np.asarray(matrix)
        pairs = _pairs(grid, 2)
        # Each pass windows both images of a pair on where the previous fit puts their
        # common specimen; a window placed for the wrong shift pulls the peak towards it,
        # so the fit is repeated until it stops moving (it converges on the true shift,
        # where the two windows cover the same specimen exactly: a specimen with large
        # structures pulls hardest, about 0.4x the error per pass).
        longer = _pairs(grid, 4)
        if len(longer) > MAX_PAIRS:  # small regions at high |k|: a fixed random subset
            pick = np.random.default_rng(0).choice(len(longer), MAX_PAIRS, replace=False)
            longer = longer[np.sort(pick)]
        weights = None
        for iteration in range(DIRECT_PASSES):
            if iteration or fitted:  # with a fit, longer baselines and re-centred windows
                pairs = longer
            dd = centroids[pairs[:, 1]] - centroids[pairs[:, 0]]
            predicted = dd @ matrix.T
            ok = _usable(pairs, predicted, self.scan_shape)
            pairs, dd, predicted = pairs[ok], dd[ok], predicted[ok]
            if len(pairs) < 6:
                break
            # the weights need a first fit to tell signal from noise; they are measured
            # twice (the second time on a better fit) and then kept: they change slowly
            auto = [] if iteration + fitted in (1, 3) else None
            cross = _cross_spectra(self.regions, pairs, predicted, auto)
            if auto is not None:
                weights = _spectral_weights(cross, auto, predicted, self.scan_shape)
            shifts = _peak_shifts(cross, self.scan_shape, weights)
            previous = matrix
            matrix, inliers, rms = _fit_matrix(dd, shifts)
            self.report(span[0] + (span[1] - span[0]) * (iteration + 1) / DIRECT_PASSES, None)
            moved = np.abs(matrix - previous).max() / max(np.abs(matrix).max(), 1e-300)
            blur = math.sqrt(abs(np.linalg.det(matrix))) * self.regions.size
            self.details["region_blur_px"] = blur
            # the first weighted fit is close enough to sharpen with
            if sharpen_at is not None and iteration >= 1 and blur > sharpen_at:
                if inliers.mean() >= 0.5:  # a fit worth sharpening with
                    self.matrix = matrix
                    return None
            # from scratch the third pass is the first to start from a weighted fit
            if iteration >= (1 if fitted else 2) and moved < DIRECT_TOLERANCE:
                break
        self.details["direct_passes"] = iteration + 1
        fraction = float(inliers.mean()) if len(pairs) >= 6 else 0.0
        self.details.update(
            matrix=matrix.tolist(),
            pairs=int(len(pairs)),
            inlier_fraction=fraction,
            rms_residual_px=rms if fraction else None,
        )
        if fraction < 0.5 or not np.isfinite(matrix).all() or not np.any(matrix):
            raise CalibrationFailedError(
                "The images seen by different parts of the bright-field disk do not agree on "
                f"a shift ({fraction:.0%} of {len(pairs)} region pairs consistent): the data "
                "show no specimen detail the twin can be fitted to (featureless or noise)."
            )
        dd = centroids[pairs[:, 1]] - centroids[pairs[:, 0]]
        largest = float(np.linalg.norm(dd[inliers] @ matrix.T, axis=1).max())
        self.details["largest_shift_px"] = largest
        if largest < max(MIN_PARALLAX_PX, PARALLAX_SIGNIFICANCE * rms):
            raise CalibrationFailedError(
                "The images seen by different parts of the bright-field disk do not shift "
                f"against each other (largest fitted shift {largest:.3f} scan px, scatter "
                f"{rms:.3f} px): the data are not overfocused, or the overfocus is too small "
                "for this scan step."
            )
        self.matrix = matrix
        self._bootstrap(pairs, dd, shifts, inliers, matrix)
        return self.params_for(matrix)

    def _bootstrap(self, pairs, dd, shifts, inliers, matrix) -> None:
        """Standard errors of rotation and magnification, and the handedness margin, from
        refitting ``M`` to resamples (with replacement) of the detector regions."""
        n = len(self.regions.images)
        pairs, dd, shifts = pairs[inliers], dd[inliers], shifts[inliers]
        sign = 1.0 if self.start.overfocus > 0 else -1.0
        k0, theta0, flip0 = decompose(matrix, sign)
        rng = np.random.default_rng(0)  # reproducible
        thetas, ks, dets = [], [], []
        for _ in range(BOOTSTRAP_ROUNDS):
            counts = np.bincount(rng.integers(0, n, n), minlength=n)
            weight = counts[pairs[:, 0]] * counts[pairs[:, 1]]
            if np.count_nonzero(weight) < 6:
                continue
            root = np.sqrt(weight)[:, None]
            fitted, *_ = np.linalg.lstsq(dd * root, shifts * root, rcond=None)
            k, theta, _ = decompose(fitted.T, sign, flip0)
            thetas.append(wrap_angle(theta - theta0))
            ks.append(k)
            dets.append(float(np.linalg.det(fitted.T)))
        if len(ks) < 20:
            return
        sigma_k = float(np.std(ks))
        det_sigma = float(np.std(dets))
        self.bootstrap = {
            "scan_rotation": float(np.std(thetas)),
            "magnification": sigma_k,
            "flip_margin": abs(float(np.linalg.det(matrix))) / max(det_sigma, 1e-300),
        }

    def uncertainty(self, params: TwinParams, direct: TwinParams) -> tuple[dict, float | None]:
        """Standard errors of the free parameters at ``params``, and the handedness margin.

        The bootstrap over detector regions measures the statistical error; the difference
        between the refined and the direct estimate (two methods with different
        systematics) is added in quadrature as an estimate of the systematic one.

        Raises
        ------
        CalibrationFailedError
            The handedness is free and the two fit within noise.
        """
        boot = getattr(self, "bootstrap", None)
        if boot is None:
            return {}, None
        out = {}
        if "scan_rotation" in self.free:
            systematic = wrap_angle(params.scan_rotation - direct.scan_rotation)
            out["scan_rotation"] = math.hypot(
                boot["scan_rotation"], systematic, SYSTEMATIC_ROTATION_DEG
            )
        if "overfocus" in self.free:
            s, p, length = params.scan_pixel_size, params.detector_pixel_size, params.camera_length
            k = params.magnification
            # f = k s L / (p - k s): df/dk = s L p / (p - k s)^2
            statistical = abs(s * length * p / (p - k * s) ** 2) * boot["magnification"]
            out["overfocus"] = math.hypot(
                statistical,
                params.overfocus - direct.overfocus,
                SYSTEMATIC_OVERFOCUS * params.overfocus,
            )
        for name in ("cy", "cx"):
            if name in self.free:
                # the centroid of a thresholded disk: about half a pixel over its perimeter
                out[name] = 0.5 / math.sqrt(2 * math.pi * max(self.disk.radius, 1.0))
        margin = boot["flip_margin"] if "flip_y" in self.free else None
        if margin is not None and margin < MIN_FLIP_MARGIN:
            raise CalibrationFailedError(
                f"The handedness cannot be told: the two flips fit within noise (margin "
                f"{margin:.1f} standard errors < {MIN_FLIP_MARGIN:g}); fix flip_y from another "
                "calibration and calibrate the rest."
            )
        return out, margin

    def refine(self, estimate: TwinParams, history: list) -> tuple[TwinParams, float]:
        """Maximise the pair coherence over the free rotation and magnification."""
        names = [n for n in ("scan_rotation", "overfocus") if n in self.free]
        current = estimate
        # (regions half as large were tried: their images are less blurred but noisier,
        # and the result was no more accurate at modest doses)
        regions = self.regions
        grid, centroids = regions.grid, regions.centroids
        pairs = _pairs(grid, 4)
        dd = centroids[pairs[:, 1]] - centroids[pairs[:, 0]]
        score = float("nan")
        for _round in range(2):  # the second round re-centres the windows on the optimum
            predicted = dd @ current.matrix.T
            ok = np.flatnonzero(_usable(pairs, predicted, self.scan_shape))
            if len(ok) > MAX_PAIRS:
                ok = np.sort(np.random.default_rng(0).choice(ok, MAX_PAIRS, replace=False))
            coherence = _PairCoherence(regions, pairs[ok], predicted[ok])
            self.details["refinement_pairs"] = int(len(ok))

            def params_at(x, current=current):
                changes = {}
                if "scan_rotation" in names:
                    changes["scan_rotation"] = float(x[names.index("scan_rotation")])
                if "overfocus" in names:
                    k = math.copysign(
                        math.exp(x[names.index("overfocus")] / 100.0), estimate.magnification
                    )
                    changes["overfocus"] = overfocus_for_magnification(k, estimate)
                return current.replace(**changes)

            def cost(x, coherence=coherence, params_at=params_at):
                params = params_at(x)
                value = coherence(params.matrix)
                history.append((params, value))
                self.report(0.8 + 0.2 * min(1.0, len(history) / 100), params)
                return -value

            x0 = []
            if "scan_rotation" in names:
                x0.append(current.scan_rotation)
            if "overfocus" in names:
                x0.append(100.0 * math.log(abs(current.magnification)))
            if not x0:
                score = coherence(current.matrix)
                history.append((current, score))
                break
            # steps: 0.3° and 0.5 % (the estimate is closer than that)
            simplex = [x0] + [
                [
                    v + (0.3 if names[i] == "scan_rotation" else 0.5) * (i == j)
                    for i, v in enumerate(x0)
                ]
                for j in range(len(x0))
            ]
            result = optimize.minimize(
                cost,
                x0,
                method="Nelder-Mead",
                options={"initial_simplex": simplex, "xatol": 1e-3, "fatol": 1e-8, "maxfev": 200},
            )
            current, score = params_at(result.x), -float(result.fun)
        return current.replace(scan_rotation=wrap_angle(current.scan_rotation)), score


def estimate(
    data,
    start: TwinParams,
    *,
    free=("scan_rotation", "flip_y", "overfocus"),
    progress: Progress | None = None,
) -> TwinParams:
    """Direct estimate of rotation, handedness and overfocus from parallax (no search).

    Needs no start value of ``scan_rotation`` or ``flip_y``; from ``start`` it takes the
    lengths that stay fixed (scan step, camera length, detector pixel size), the sign of
    the overfocus, and any parameter not in ``free``. See :func:`calibrate`.

    Raises
    ------
    CalibrationFailedError
        When the data cannot determine the parameters.
    """
    return _Calibration(data, start, _check_free(free), progress).direct()


def calibrate(
    data,
    start: TwinParams,
    *,
    free=("scan_rotation", "flip_y", "overfocus"),
    progress: Progress | None = None,
) -> CalibrationResult:
    """Find the twin parameters that make ``shifted_sum`` sharpest.

    Parameters
    ----------
    data : array_like, shape (scan_y, scan_x, det_y, det_x)
        NumPy, memory-mapped or Dask data. One pass over (at most the central
        128 x 128 scan positions of) it, plus 64 frames to find the bright-field disk.
    start : TwinParams
        Known lengths (scan step, camera length, detector pixel size) and the starting
        point. Only the sign of ``start.overfocus`` matters (over- and underfocus cannot
        be told apart from the data: they differ by a 180° rotation).
    free : sequence of str
        Parameters to determine, from ``"scan_rotation"``, ``"flip_y"``, ``"overfocus"``,
        ``"cy"``, ``"cx"``. The beam centre comes from the bright-field disk's centroid
        (the sharpness of ``shifted_sum`` does not depend on it). The others keep the
        values of ``start``.
    progress : callable, optional
        ``progress(fraction, params)``, called often: ``fraction`` done (0..1] and the
        best parameters so far (None while reading). It may raise
        :class:`~napari_emcal.errors.Cancelled` to stop.

    Returns
    -------
    CalibrationResult

    Raises
    ------
    CalibrationFailedError
        When the data cannot determine the parameters (featureless specimen, noise, no
        bright-field disk); the message says why.
    InvalidParameterError
        For an unknown free parameter or a ``start`` that is not a TwinParams.
    """
    run = _Calibration(data, start, _check_free(free), progress)
    first = run.direct()
    run.report(0.8, first)
    history: list[tuple[TwinParams, float]] = []
    params, score = run.refine(first, history)
    if not score >= MIN_SCORE:
        raise CalibrationFailedError(
            f"The sharpest twin found still leaves the images of different detector regions "
            f"unrelated (correlation {score:.2f} < {MIN_SCORE}): the data do not determine "
            "the parameters."
        )
    run.details["seconds"] = time.perf_counter() - run.t0
    uncertainty, margin = run.uncertainty(params, first)
    run.report(1.0, params)
    return CalibrationResult(
        params,
        score,
        len(history),
        history,
        first,
        start,
        run.details,
        uncertainty=uncertainty,
        flip_margin=margin,
    )


def history_values(result) -> tuple[dict, dict]:
    """A calibration's values and standard errors as the history keeps them."""
    p, sigma = result.params, result.uncertainty
    values = {
        "scan_rotation_deg": p.scan_rotation,
        "flip_y": p.flip_y,
        "overfocus_m": p.overfocus,
        "cy_px": p.cy,
        "cx_px": p.cx,
    }
    names = {
        "scan_rotation": "scan_rotation_deg",
        "overfocus": "overfocus_m",
        "cy": "cy_px",
        "cx": "cx_px",
    }
    return values, {names[k]: v for k, v in sigma.items() if k in names}
