"""The direct estimate of ``M``: fit it to the shifts between neighbouring regions' point
images, each pair windowed on where the previous fit puts its common specimen, until the
fit stops moving."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ...errors import CalibrationFailedError
from .parallax import (
    MAX_PAIRS,
    NoiseSpectrum,
    _cross_spectra,
    _fit_matrix,
    _pairs,
    _peak_shifts,
    _repeat,
    _spectral_weights,
    _usable,
)
from .regions import MIN_PAIRS, _Regions

#: The direct estimate's passes at most, and the relative change of the fitted matrix
#: below which it has converged.
DIRECT_PASSES = 16
DIRECT_TOLERANCE = 2e-5
#: The fitted shifts between regions must reach this many scan pixels, and this many times
#: their scatter about the fit, for the parallax to be measured (else: not overfocused).
MIN_PARALLAX_PX = 0.5
PARALLAX_SIGNIFICANCE = 5.0
#: Pairs of regions this many grid steps apart at most: the first pass from scratch, and
#: every pass once a fit places the windows.
NEAR_REACH, FAR_REACH = 2, 4
#: The fit is worth its result (or sharpening the regions with) when this share of the
#: pairs agrees with it.
MIN_INLIER_FRACTION = 0.5
#: The regions' images matching themselves under a translation to this level (their mean
#: autocorrelation's highest secondary peak, 1 at zero lag) make the shifts between regions
#: ambiguous by that translation: a lattice. A cross grating with a few particles on it
#: repeats to about 0.8, a perfect lattice to 0.98; large particles, sparse points and
#: textures to at most 0.15.
REPEAT_LEVEL = 0.9


@dataclass
class DirectFit:
    """One direct fit of ``M`` (:func:`direct_fit`): the last pass's pairs and what it
    measured on them."""

    matrix: np.ndarray  # (2, 2): scan px per detector px
    pairs: np.ndarray  # (n, 2) region indices of the last pass
    dd: np.ndarray  # (n, 2) their centroids' separation, detector px
    shifts: np.ndarray | None  # (n, 2) measured shifts, scan px (None: no pass measured)
    inliers: np.ndarray | None  # (n,) bool: the pairs within the fit's tolerance
    rms_px: float | None  # residual of the inliers, scan px
    passes: int
    blur_px: float | None  # how far a region's plain sum blurs its image, scan px
    blurred: bool = False  # stopped early: the regions' images are worth sharpening

    @property
    def inlier_fraction(self) -> float:
        return float(self.inliers.mean()) if len(self.pairs) >= MIN_PAIRS else 0.0


def direct_fit(
    regions: _Regions,
    scan_shape,
    matrix=None,
    *,
    sharpen_at: float | None = None,
    report: Callable[[float], object] = lambda fraction: None,
) -> DirectFit:
    """One direct fit, from scratch or (``matrix``) from an earlier fit of ``M``;
    ``report(fraction)`` after each pass. With ``sharpen_at``, it stops early (``blurred``)
    as soon as a fit shows the regions' images blurred over more scan pixels than that:
    their sharpened images will give a better fit."""
    grid, centroids = regions.grid, regions.centroids
    # with an earlier fit, every pass takes the longer baselines, and the weights are
    # measured on the first and third instead of the second and fourth
    fitted = matrix is not None
    matrix = np.zeros((2, 2)) if matrix is None else np.asarray(matrix)
    pairs = _pairs(grid, NEAR_REACH)
    # Each pass windows both images of a pair on where the previous fit puts their
    # common specimen; a window placed for the wrong shift pulls the peak towards it,
    # so the fit is repeated until it stops moving (it converges on the true shift,
    # where the two windows cover the same specimen exactly: a specimen with large
    # structures pulls hardest, about 0.4x the error per pass).
    longer = _pairs(grid, FAR_REACH)
    if len(longer) > MAX_PAIRS:  # small regions at high |k|: a fixed random subset
        pick = np.random.default_rng(0).choice(len(longer), MAX_PAIRS, replace=False)
        longer = longer[np.sort(pick)]
    weights = None
    shifts = inliers = rms = blur = None
    for iteration in range(DIRECT_PASSES):
        if iteration or fitted:  # with a fit, longer baselines and re-centred windows
            pairs = longer
        dd = centroids[pairs[:, 1]] - centroids[pairs[:, 0]]
        predicted = dd @ matrix.T
        ok = _usable(pairs, predicted, scan_shape)
        pairs, dd, predicted = pairs[ok], dd[ok], predicted[ok]
        if len(pairs) < MIN_PAIRS:
            break
        # the weights need a first fit to tell signal from noise; they are measured
        # twice (the second time on a better fit) and then kept: they change slowly
        noise = NoiseSpectrum() if iteration + fitted in (1, 3) else None
        cross = _cross_spectra(regions, pairs, predicted, noise)
        if noise is not None:
            weights = _spectral_weights(cross, noise, predicted, scan_shape)
        shifts = _peak_shifts(cross, scan_shape, weights)
        previous = matrix
        matrix, inliers, rms = _fit_matrix(dd, shifts, previous)
        report((iteration + 1) / DIRECT_PASSES)
        moved = np.abs(matrix - previous).max() / max(np.abs(matrix).max(), 1e-300)
        blur = math.sqrt(abs(np.linalg.det(matrix))) * regions.size
        # the first weighted fit is close enough to sharpen with
        if sharpen_at is not None and iteration >= 1 and blur > sharpen_at:
            if inliers.mean() >= MIN_INLIER_FRACTION:  # a fit worth sharpening with
                return DirectFit(
                    matrix, pairs, dd, shifts, inliers, rms, iteration + 1, blur, blurred=True
                )
        # from scratch the third pass is the first to start from a weighted fit
        if iteration >= (1 if fitted else 2) and moved < DIRECT_TOLERANCE:
            break
    return DirectFit(matrix, pairs, dd, shifts, inliers, rms, iteration + 1, blur)


def check_direct_fit(fit: DirectFit, regions: _Regions) -> float:
    """The largest fitted shift between regions (scan px), once the fit is known to
    measure a parallax.

    Raises
    ------
    CalibrationFailedError
        The specimen repeats (a lattice: every shift is ambiguous by its period), too few
        pairs agree on a shift (no specimen detail), or the shifts are too small to be told
        from their scatter (not overfocused).
    """
    fraction, matrix, pairs = fit.inlier_fraction, fit.matrix, fit.pairs
    height, lag = _repeat(regions.images)
    if height >= REPEAT_LEVEL:
        angle = math.degrees(math.atan2(lag[0], lag[1]))
        raise CalibrationFailedError(
            f"The specimen repeats: the images match themselves to {height:.0%} when shifted "
            f"by {math.hypot(*lag):.1f} scan px (at {angle:.0f}° from +x towards +y), so the "
            "shifts between detector regions are known only up to that period and the fit "
            "could be off by one. Calibrate on an area with non-periodic detail (an edge, "
            "particles, a defect)."
        )
    if fraction < MIN_INLIER_FRACTION or not np.isfinite(matrix).all() or not np.any(matrix):
        raise CalibrationFailedError(
            "The images seen by different parts of the bright-field disk do not agree on "
            f"a shift ({fraction:.0%} of {len(pairs)} region pairs consistent): the data "
            "show no specimen detail the twin can be fitted to (featureless or noise)."
        )
    centroids = regions.centroids
    dd = centroids[pairs[:, 1]] - centroids[pairs[:, 0]]
    largest = float(np.linalg.norm(dd[fit.inliers] @ matrix.T, axis=1).max())
    if largest < max(MIN_PARALLAX_PX, PARALLAX_SIGNIFICANCE * fit.rms_px):
        raise CalibrationFailedError(
            "The images seen by different parts of the bright-field disk do not shift "
            f"against each other (largest fitted shift {largest:.3f} scan px, scatter "
            f"{fit.rms_px:.3f} px): the data are not overfocused, or the overfocus is too "
            "small for this scan step."
        )
    return largest
