"""Pixel size and grid angle from an image of a periodic specimen, by autocorrelation.

Method (after SerialEM's *Find Pixel Size*; see ``autocorrelation.py`` for the transform):

1. Estimate the period roughly from the amplitude spectrum and bin the image to a working
   size of about ``WORK_PX_PER_PERIOD`` pixels per period (within ``WORK_SIZE_RANGE``):
   many repeats need a large working size, few repeats a small one.
2. Crop dark regions at the edges and mask what is left of them.
3. Compute the filtered, envelope-normalised autocorrelation.
4. Starting peak: the strong peaks nearest the centre (the marker's peak when given).
   Every candidate is tried; the one whose lattice the autocorrelation confirms best wins,
   which rules out diagonal peaks and spurious ones between strong peaks.
5. Walk outwards along the starting direction (peaks at 2, 3, 4, 6, 9… times the spacing),
   re-estimating the spacing from the farthest peak found; find the series about 90° away
   and walk it too.
6. Check the two directions (angle within ``ANGLE_TOLERANCE_DEG`` of 90°, spacings within
   ``SPACING_TOLERANCE`` of the expected ratio), predict the whole lattice, refine the peaks
   found at the predicted points, and fit both lattice vectors to all of them by weighted
   least squares (improves on using the two farthest peaks alone). The fraction of
   predicted points where a peak is found, higher than the autocorrelation half-way
   between lattice points, is the quality. A lattice that is not significantly higher on
   its points than between them (texture, noise) is reported as "no lattice found".

Angles are in degrees from the image's +x (column) axis towards +y (rows): clockwise as
napari displays an image, the same sense as the twin's ``scan_rotation``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from .._checks import image_2d
from ..errors import InvalidParameterError
from ..units import convert
from .autocorrelation import (
    Autocorrelation,
    bin_image,
    bright_region,
    estimate_period,
    filtered_autocorrelation,
    refine_peaks,
)

__all__ = ["MODES", "PixelSizeResult", "find_pixel_size", "known_spacings"]

#: Cross-line replica grating: 2160 lines per mm.
GRATING_LINES_PER_MM = 2160.0
#: Catalase crystal: the short-axis spacing and the long one (8.75 nm, whose peaks are weak
#: so the autocorrelation shows them at twice that), in nm.
CATALASE_NM = (6.85, 17.5)
MODES = ("grating", "catalase", "mesh", "lattice")

WORK_PX_PER_PERIOD = 10
WORK_SIZE_RANGE = (512, 2048)
ANGLE_TOLERANCE_DEG = 10.0
SPACING_TOLERANCE = 0.2
#: A peak counts when it is at least this fraction of the starting peak's height.
MIN_RELATIVE_HEIGHT = 0.35
#: A lattice is accepted when peaks are found at this fraction of the predicted points.
MIN_QUALITY = 0.5
MAX_LATTICE_POINTS = 400
#: Lattice points off the two walked directions needed to confirm a lattice, and how far
#: (in standard errors) the autocorrelation must be higher on them than between them.
MIN_CHECK_POINTS = 3
#: Shortest lattice period that can be measured, in pixels of the working image.
MIN_SPACING_PX = 2.5
MIN_SIGNIFICANCE = 5.0


def known_spacings(
    mode: str = "grating", spacing_nm: float | None = None, mesh: float | None = None
) -> tuple[float, float]:
    """The specimen's periods (nm) along its first and second lattice direction.

    Raises
    ------
    InvalidParameterError
        Unknown mode, or a mode whose spacing is not given.
    """
    if mode not in MODES:
        raise InvalidParameterError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
    if spacing_nm is not None and not (np.isfinite(spacing_nm) and spacing_nm > 0):
        raise InvalidParameterError(f"spacing_nm must be a positive number; got {spacing_nm}")
    if mode == "grating":
        period = spacing_nm or convert(1.0, "mm", "nm") / GRATING_LINES_PER_MM
        return period, period
    if mode == "catalase":
        if spacing_nm is not None:
            raise InvalidParameterError(
                "catalase has fixed spacings (6.85 nm and 17.5 nm); use mode='lattice' with "
                "spacing_nm for another crystal"
            )
        return CATALASE_NM
    if mode == "mesh":
        if spacing_nm is None:
            if mesh is None or not (np.isfinite(mesh) and mesh > 0):
                raise InvalidParameterError(
                    "mode='mesh' needs mesh= the grid's openings per inch (e.g. 400)"
                )
            spacing_nm = convert(25.4, "mm", "nm") / mesh  # an inch is 25.4 mm
        return spacing_nm, spacing_nm
    if spacing_nm is None:
        raise InvalidParameterError("mode='lattice' needs spacing_nm= the lattice period in nm")
    return spacing_nm, spacing_nm


@dataclass(frozen=True)
class PixelSizeResult:
    """What :func:`find_pixel_size` found. Lengths in image pixels unless named ``_nm``.

    When no lattice was found, ``found`` is False, ``message`` says why, and the
    measurements are None; the autocorrelation is still there to look at (and to place a
    marker in).
    """

    found: bool
    message: str
    mode: str
    #: Known periods of the specimen along the first and second direction (nm).
    spacing_nm: tuple[float, float]
    #: Pixel size (nm per pixel): known spacing / measured spacing, averaged over directions.
    pixel_size_nm: float | None
    #: Direction of the first lattice direction (degrees, see the module docstring); for
    #: square lattices within (-45, 45], for catalase (short axis) within (-90, 90].
    angle_deg: float | None
    #: Measured period along each direction (pixels).
    spacing_px: tuple[float, float] | None
    #: Intervals walked along each direction (the farthest peak's multiple of the period).
    intervals: tuple[int, int]
    #: Angle from the first direction to the second (degrees, 90 for a square lattice).
    angle_between_deg: float | None
    #: Binning factor of the working image.
    binning: int
    #: Fraction of the lattice points predicted in the autocorrelation where a peak was found.
    quality: float
    #: RMS distance of the found peaks from the fitted lattice (pixels).
    residual_px: float | None
    #: The two fitted lattice vectors as rows (dy, dx) in pixels.
    lattice_vectors: np.ndarray | None
    #: Normalised autocorrelation of the binned image (1 at zero lag).
    autocorrelation: np.ndarray = field(repr=False)
    #: Pixel of zero lag in ``autocorrelation``.
    origin: tuple[int, int] = (0, 0)
    #: Lags (dy, dx) in image pixels of the peaks used: the starting peak first.
    peaks: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)), repr=False)
    #: For each of ``peaks``: 0 first direction, 1 second direction, 2 elsewhere.
    peak_series: np.ndarray = field(default_factory=lambda: np.zeros(0, int), repr=False)
    #: Lag (dy, dx) in image pixels of the starting peak.
    start_peak: tuple[float, float] | None = None

    def autocorrelation_pixel(self, lag) -> np.ndarray:
        """Pixel (y, x) of ``autocorrelation`` at a lag given in image pixels."""
        return np.asarray(lag, dtype=float) / self.binning + np.asarray(self.origin)

    def to_dict(self) -> dict:
        """The measurements as plain JSON-able values (no images)."""
        return {
            "found": self.found,
            "message": self.message,
            "mode": self.mode,
            "spacing_nm": list(self.spacing_nm),
            "pixel_size_nm": self.pixel_size_nm,
            "angle_deg": self.angle_deg,
            "spacing_px": None if self.spacing_px is None else list(self.spacing_px),
            "intervals": list(self.intervals),
            "angle_between_deg": self.angle_between_deg,
            "binning": self.binning,
            "quality": self.quality,
            "residual_px": self.residual_px,
            "start_peak": None if self.start_peak is None else list(self.start_peak),
        }


def find_pixel_size(
    image,
    *,
    mode: str = "grating",
    spacing_nm: float | None = None,
    mesh: float | None = None,
    marker=None,
    binned_size: int | None = None,
) -> PixelSizeResult:
    """Pixel size and grid angle of an image of a periodic specimen.

    Parameters
    ----------
    image : 2D array
        The image (any real dtype; NumPy, Dask or anything ``np.asarray`` reads).
    mode : {"grating", "catalase", "mesh", "lattice"}
        ``"grating"``: cross-line replica, 2160 lines/mm (462.96 nm period) unless
        ``spacing_nm`` is given. ``"catalase"``: catalase crystal, 6.85 nm along the short
        axis and 17.5 nm (twice 8.75 nm) at 90°. ``"mesh"``: grid bars, ``mesh`` openings
        per inch (period 25.4 mm / mesh). ``"lattice"``: a square lattice of period
        ``spacing_nm`` (e.g. atomic columns).
    spacing_nm : float, optional
        Period of the specimen in nm (overrides the grating's; required for "lattice").
    mesh : float, optional
        Openings per inch, for ``mode="mesh"``.
    marker : (dy, dx), optional
        A point of the autocorrelation near the peak to start from, as a lag from its
        centre in image pixels (``PixelSizeResult.peaks`` uses the same coordinates). Use
        it when the automatic choice picked the wrong series.
    binned_size : int, optional
        Working size (pixels along the larger axis) to bin the image to; by default it is
        chosen from the number of repeats across the image.

    Returns
    -------
    PixelSizeResult
        ``found`` is False (with the reason in ``message``) when no lattice was found.

    Raises
    ------
    InvalidDataError
        The image is not 2D, is too small, or holds NaN or infinite values.
    InvalidParameterError
        Unknown mode, missing spacing, or an invalid marker or binned size.
    """
    known = known_spacings(mode, spacing_nm, mesh)
    image = _validated_image(image)
    if marker is not None:
        marker = np.asarray(marker, dtype=float)
        if marker.shape != (2,) or not np.all(np.isfinite(marker)) or np.hypot(*marker) < 1:
            raise InvalidParameterError(
                f"marker must be a lag (dy, dx) in pixels away from the centre; got {marker}"
            )
    if binned_size is not None and (int(binned_size) != binned_size or binned_size < 64):
        raise InvalidParameterError(f"binned_size must be an integer >= 64; got {binned_size}")

    if float(np.ptp(image)) == 0:
        return _failure("no lattice found: the image is uniform", mode, known, 1, None)
    ratio = known[1] / known[0]
    rectangular = abs(ratio - 1) > 1e-9
    binning, period = _working_binning(image, binned_size)
    working = bin_image(image, binning)
    period_work = None if period is None else period / binning
    crop, weight = bright_region(working, period_work)
    working = working[crop]
    if min(working.shape) < 16:
        return _failure(
            "no lattice found: the image is dark except for a tiny region",
            mode,
            known,
            binning,
            None,
        )
    small = max(working.shape) <= 1024  # cheap enough to keep more lags
    acf = filtered_autocorrelation(
        working, weight, period_px=period_work, max_lag_fraction=0.7 if small else 0.5
    )

    if marker is not None:
        starts = [marker / binning]
    else:
        starts = _start_candidates(acf)
        if not starts:
            return _failure(
                "no lattice found: the autocorrelation has no peaks besides the centre",
                mode,
                known,
                binning,
                acf,
            )
    lattices = [_lattice_from(acf, start, ratio) for start in starts]
    best = max(lattices, key=lambda lat: (lat.get("quality", -1.0), -lat["order"]))
    if marker is None and "vectors" in best and best["quality"] >= MIN_QUALITY:
        best = _finest(acf, best, ratio)
    if "vectors" not in best or best["quality"] < MIN_QUALITY:
        reason = best.get("reason") or (
            f"only {best['quality']:.0%} of the predicted lattice peaks are present "
            f"(at least {MIN_QUALITY:.0%} needed)"
        )
        if marker is None:
            shape = "rectangular" if rectangular else "square"
            reason = (
                f"no peaks of the autocorrelation form a {shape} lattice (featureless or "
                f"non-periodic image?); best candidate: {reason}"
            )
        return _failure(
            f"no lattice found: {reason}", mode, known, binning, acf, start=best["start"]
        )
    return _success(best, mode, known, binning, acf, rectangular)


# -- steps ------------------------------------------------------------------------------
def _validated_image(image) -> np.ndarray:
    return image_2d(image, name="the image", min_size=32)


def _working_binning(image: np.ndarray, binned_size: int | None) -> tuple[int, float | None]:
    """Binning factor, and the rough period in image pixels (None when not seen)."""
    size = max(image.shape)
    period = estimate_period(image)
    if binned_size is None:
        repeats = size / period if period else 100.0
        lo, hi = WORK_SIZE_RANGE
        binned_size = min(max(repeats * WORK_PX_PER_PERIOD, lo), hi)
    binning = max(1, int(size // binned_size))
    while min(image.shape) // binning < 32:  # never bin below a usable size
        binning -= 1
    return binning, period


def _start_candidates(acf: Autocorrelation, max_candidates: int = 8) -> list[np.ndarray]:
    """Strong peaks nearest the centre (one of each ± pair), nearest first."""
    image = acf.image
    # the central peak ends at the first minimum of the radially averaged autocorrelation
    oy, ox = acf.origin
    yy, xx = np.indices(image.shape)
    radius = np.hypot(yy - oy, xx - ox)
    rbin = radius.astype(int)
    limit = min(oy, ox)
    sums = np.bincount(rbin.ravel(), weights=image.ravel(), minlength=limit + 2)[: limit + 1]
    counts = np.bincount(rbin.ravel(), minlength=limit + 2)[: limit + 1]
    profile = sums / np.maximum(counts, 1)
    ends = [
        r
        for r in range(1, limit)
        if profile[r] <= 0 or (profile[r] <= profile[r - 1] and profile[r] <= profile[r + 1])
    ]
    r_min = ends[0] if ends else 2
    upper = (yy > oy) | ((yy == oy) & (xx > ox))  # one of each centro-symmetric pair
    maxima = (image == ndimage.maximum_filter(image, size=3)) & acf.valid & upper
    maxima &= (radius > max(r_min, MIN_SPACING_PX)) & (radius < limit - 2)
    py, px = np.nonzero(maxima)
    if py.size == 0:
        return []
    heights = image[py, px]
    strong = heights >= 0.5 * heights.max()
    py, px, heights = py[strong], px[strong], heights[strong]
    dist = radius[py, px]
    nearest = np.argsort(dist)[:200]
    # non-maximum suppression over about the central peak's radius: a ridge of the
    # autocorrelation (a line grating's) has many local maxima, all lower than the lattice
    # point on it
    kept: list[int] = []
    for i in nearest[np.argsort(-heights[nearest], kind="stable")]:
        if all(np.hypot(py[i] - py[j], px[i] - px[j]) > max(2.0, r_min) for j in kept):
            kept.append(i)
    kept.sort(key=lambda i: dist[i])
    return [np.array([py[i] - oy, px[i] - ox], float) for i in kept[:max_candidates]]


def _walk(acf: Autocorrelation, first: np.ndarray, height: float) -> tuple[list, list]:
    """Peaks at growing multiples of ``first``: (multiples, positions)."""
    multiples, positions = [1], [first]
    spacing = first.copy()
    k, misses = 1, 0
    length = float(np.hypot(*first))
    while True:
        # small steps first, then geometric ones: the prediction error stays well below
        # the search radius because the spacing improves as 1 / k
        k = k + 1 if k < 4 else int(math.ceil(k * 1.5))
        predicted = k * spacing
        if not acf.inside(predicted[None])[0]:
            break
        pos, h = refine_peaks(acf, predicted[None], max(1.5, 0.1 * length))
        # the spacing may only be corrected a little: otherwise the walk could creep up the
        # flank of the central peak
        consistent = np.hypot(*(pos[0] / k - spacing)) <= 0.05 * length
        if h[0] >= MIN_RELATIVE_HEIGHT * height and consistent:
            multiples.append(k)
            positions.append(pos[0])
            spacing = pos[0] / k
            misses = 0
        else:
            misses += 1
            if misses >= 2:
                break
    return multiples, positions


def _angle(vector) -> float:
    return math.degrees(math.atan2(vector[0], vector[1]))


def _lattice_from(acf: Autocorrelation, start: np.ndarray, ratio: float) -> dict:
    """Walk both directions from ``start`` and fit the lattice; a dict of what was found."""
    length = float(np.hypot(*start))
    pos, h = refine_peaks(acf, start[None], max(2.0, 0.15 * length))
    out = {"start": start, "order": length, "quality": 0.0}
    if length < MIN_SPACING_PX:
        out["reason"] = f"the starting point is within {MIN_SPACING_PX} px of the centre"
        return out
    if not np.isfinite(h[0]) or h[0] <= 0:
        out["reason"] = "there is no peak at the starting point"
        return out
    first, height = pos[0], float(h[0])
    if np.hypot(*first) < MIN_SPACING_PX:
        out["reason"] = "the starting peak is the flank of the central peak"
        return out
    out["start"] = first
    mult_a, pos_a = _walk(acf, first, height)
    spacing_a = pos_a[-1] / mult_a[-1]

    # the second series: about 90° further, at the expected spacing ratio
    perpendicular = np.array([spacing_a[1], -spacing_a[0]]) * ratio
    pos_b, h_b = refine_peaks(
        acf, perpendicular[None], max(2.0, SPACING_TOLERANCE * float(np.hypot(*perpendicular)))
    )
    if not np.isfinite(h_b[0]) or h_b[0] < MIN_RELATIVE_HEIGHT * height:
        out["reason"] = (
            "one series of peaks found, but no second series about 90° away at the expected spacing"
        )
        return out
    second = pos_b[0]
    if np.hypot(*second) < MIN_SPACING_PX:
        out["reason"] = "the second series is the flank of the central peak"
        return out
    between = (_angle(second) - _angle(spacing_a)) % 360
    relative = float(np.hypot(*second) / np.hypot(*spacing_a)) / ratio
    if abs(between - 90) > ANGLE_TOLERANCE_DEG or abs(relative - 1) > SPACING_TOLERANCE:
        out["reason"] = (
            f"the two directions are {between:.1f}° apart with spacings in the "
            f"ratio {relative * ratio:.2f} (need 90° ± {ANGLE_TOLERANCE_DEG:g}° "
            f"and {ratio:.2f} ± {SPACING_TOLERANCE:.0%})"
        )
        return out
    mult_b, pos_b = _walk(acf, second, height)
    spacing_b = pos_b[-1] / mult_b[-1]

    # the whole lattice: confirm peaks at predicted points, fit both vectors to them all
    walked = [(m, 0) for m in mult_a] + [(0, m) for m in mult_b]
    walked_pos = np.array(pos_a + pos_b)
    vectors0 = np.array([spacing_a, spacing_b])
    others = _lattice_points(acf, vectors0, set(walked))
    if len(others) < MIN_CHECK_POINTS:
        out["reason"] = (
            "too few repeats in the image to confirm a lattice (the "
            "autocorrelation shows fewer than "
            f"{MIN_CHECK_POINTS} lattice points off the two directions)"
        )
        return out
    predicted = others @ vectors0
    radius = max(1.0, 0.05 * min(np.hypot(*spacing_a), np.hypot(*spacing_b)))
    found, heights = refine_peaks(acf, predicted, radius)
    # the same search half-way between lattice points (cell edges and centre): as high
    # there, on average, in anything that is not this lattice (texture, noise), and lower
    # on a lattice. Three offsets, so that a coarser lattice on a marked diagonal peak, whose
    # cell centres are lattice points of the finer one, still counts as a lattice.
    between = np.mean(
        [
            refine_peaks(acf, predicted + offset, radius)[1]
            for offset in (0.5 * spacing_a, 0.5 * spacing_b, 0.5 * (spacing_a + spacing_b))
        ],
        axis=0,
    )
    usable = np.isfinite(heights) & np.isfinite(between)
    contrast = heights[usable] - between[usable]
    confirmed = (heights >= MIN_RELATIVE_HEIGHT * height) & (heights > between)
    quality = float(confirmed[usable].mean()) if usable.any() else 0.0
    significance = (
        contrast.mean() / max(contrast.std(), 1e-12) * math.sqrt(contrast.size)
        if contrast.size >= MIN_CHECK_POINTS
        else 0.0
    )
    if significance < MIN_SIGNIFICANCE:
        out["reason"] = (
            "the autocorrelation is not higher at the predicted lattice points "
            "than between them: no periodic structure"
        )
        return out
    indices = np.vstack([np.array(walked, float), others[confirmed]])
    points = np.vstack([walked_pos, found[confirmed]])
    vectors, residual, keep = _fit_lattice(acf, indices, points)
    out.update(
        vectors=vectors,
        residual=residual,
        quality=quality,
        intervals=(max(mult_a), max(mult_b)),
        points=points[keep],
        series=_series(indices[keep]),
        height=height,
    )
    return out


def _finest(acf: Autocorrelation, lattice: dict, ratio: float) -> dict:
    """The finest lattice the autocorrelation confirms, starting from ``lattice``.

    A starting peak can be a lattice vector that is not primitive (e.g. twice the period,
    or a + 2b) when the nearest peaks are hidden in the flank of the central peak; the
    lattice built on it is confirmed too. Peaks at fractions (i a + j b) / n of the cell,
    n = 2…5, reveal that, and the lattice built on such a peak replaces it when it is
    confirmed and has a smaller cell.
    """
    a, b = lattice["vectors"]
    area = abs(a[0] * b[1] - a[1] * b[0])
    fractions = [
        (i, j, n)
        for n in range(2, 6)
        for i in range(n)
        for j in range(n)
        if (i, j) != (0, 0) and math.gcd(math.gcd(i, j), n) == 1
    ]
    vectors = np.array([(i * a + j * b) / n for i, j, n in fractions])
    # the shortest equivalent of each (subtracting whole lattice vectors)
    shifts = np.array([[0, 0], [1, 0], [0, 1], [1, 1]]) @ np.array([a, b])
    options = vectors[:, None, :] - shifts[None, :, :]
    vectors = options[np.arange(len(vectors)), np.argmin(np.hypot(*options.T).T, axis=1)]
    _, heights = refine_peaks(acf, vectors, 1.0)
    # points of a lattice are all equally high: a finer lattice's peaks match the coarse one's
    tall = np.flatnonzero(
        (heights >= 0.7 * lattice["height"]) & (np.hypot(*vectors.T) >= MIN_SPACING_PX)
    )
    for k in tall[np.argsort(np.hypot(*vectors[tall].T))]:
        finer = _lattice_from(acf, vectors[k], ratio)
        if "vectors" not in finer or finer["quality"] < max(MIN_QUALITY, lattice["quality"] - 0.1):
            continue
        fa, fb = finer["vectors"]
        # a finer lattice holds the coarse one: a and b are whole multiples of its vectors
        multiples = np.linalg.solve(np.array([fa, fb]).T, np.array([a, b]).T)
        whole = np.all(np.abs(multiples - np.rint(multiples)) < 0.1)
        if whole and abs(fa[0] * fb[1] - fa[1] * fb[0]) < 0.9 * area:
            return _finest(acf, finer, ratio)
    return lattice


def _lattice_points(acf: Autocorrelation, vectors: np.ndarray, exclude: set) -> np.ndarray:
    """Lattice indices (i, j) whose lags lie inside the valid region (at most a few hundred).

    A random sample when there are more: a regular stride would visit a sub-lattice only
    and could confirm a lattice that is too fine.
    """
    oy, ox = acf.origin
    reach = np.hypot(oy, ox)
    n = [int(reach / np.hypot(*v)) + 1 for v in vectors]
    ii, jj = np.meshgrid(np.arange(-n[0], n[0] + 1), np.arange(-n[1], n[1] + 1), indexing="ij")
    indices = np.stack([ii.ravel(), jj.ravel()], axis=1)
    keep = [
        (i, j) != (0, 0) and (i, j) not in exclude and (-i, -j) not in exclude for i, j in indices
    ]
    indices = indices[np.array(keep, bool)]
    indices = indices[acf.inside(indices @ vectors, margin=3)]
    if len(indices) > MAX_LATTICE_POINTS:
        rng = np.random.default_rng(0)  # reproducible results
        indices = indices[np.sort(rng.choice(len(indices), MAX_LATTICE_POINTS, replace=False))]
    return indices.astype(float)


def _fit_lattice(acf: Autocorrelation, indices: np.ndarray, points: np.ndarray):
    """Weighted least-squares lattice vectors; far peaks (high envelope·distance) weigh most."""
    index = np.rint(points + acf.origin).astype(int)
    weight = acf.envelope[index[:, 0], index[:, 1]].astype(float) ** 2
    keep = np.ones(len(points), bool)
    for _ in range(2):  # one pass of outlier rejection
        w = np.sqrt(weight[keep])[:, None]
        vectors, *_ = np.linalg.lstsq(indices[keep] * w, points[keep] * w, rcond=None)
        misfit = np.hypot(*(indices @ vectors - points).T)
        keep = misfit <= max(1.0, 3 * float(np.sqrt(np.mean(misfit[keep] ** 2))))
    residual = float(np.sqrt(np.mean(misfit[keep] ** 2)))
    return vectors, residual, keep


def _series(indices: np.ndarray) -> np.ndarray:
    series = np.full(len(indices), 2)
    series[indices[:, 1] == 0] = 0
    series[(indices[:, 0] == 0) & (indices[:, 1] != 0)] = 1
    return series


def _success(lattice: dict, mode, known, binning, acf, rectangular) -> PixelSizeResult:
    a, b = lattice["vectors"] * binning
    intervals = lattice["intervals"]
    points = lattice["points"] * binning
    series = lattice["series"]
    if not rectangular:
        # a square lattice's first direction: the one of ±a, ±b within (-45°, 45°]
        options = [
            (a, b, intervals, False),
            (b, -a, intervals[::-1], True),
            (-a, -b, intervals, False),
            (-b, a, intervals[::-1], True),
        ]
        for first, second, counted, swapped in options:
            if -45 < _angle(first) <= 45:
                a, b, intervals = first, second, counted
                if swapped:
                    series = np.where(series == 2, 2, 1 - series)
                break
    elif not -90 < _angle(a) <= 90:
        a, b = -a, -b
    spacing = (float(np.hypot(*a)), float(np.hypot(*b)))
    pixel_size = 0.5 * (known[0] / spacing[0] + known[1] / spacing[1])
    between = (_angle(b) - _angle(a)) % 360
    return PixelSizeResult(
        found=True,
        message=f"lattice found ({lattice['quality']:.0%} of predicted peaks)",
        mode=mode,
        spacing_nm=known,
        pixel_size_nm=float(pixel_size),
        angle_deg=float(_angle(a)),
        spacing_px=spacing,
        intervals=tuple(int(i) for i in intervals),
        angle_between_deg=float(between),
        binning=binning,
        quality=float(lattice["quality"]),
        residual_px=float(lattice["residual"] * binning),
        lattice_vectors=np.array([a, b]),
        autocorrelation=acf.image,
        origin=acf.origin,
        peaks=points,
        peak_series=series,
        start_peak=tuple(float(v) for v in lattice["start"] * binning),
    )


def _failure(message, mode, known, binning, acf, start=None) -> PixelSizeResult:
    return PixelSizeResult(
        found=False,
        message=message,
        mode=mode,
        spacing_nm=known,
        pixel_size_nm=None,
        angle_deg=None,
        spacing_px=None,
        intervals=(0, 0),
        angle_between_deg=None,
        binning=binning,
        quality=0.0,
        residual_px=None,
        lattice_vectors=None,
        autocorrelation=np.zeros((1, 1), np.float32) if acf is None else acf.image,
        origin=(0, 0) if acf is None else acf.origin,
        start_peak=None if start is None else tuple(float(v) for v in np.asarray(start) * binning),
    )
