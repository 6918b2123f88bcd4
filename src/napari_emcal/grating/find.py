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
from scipy.stats import t as student_t

from .._checks import image_2d, plausible
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
MODES = ("grating", "catalase", "mesh", "lattice", "rectangular")

WORK_PX_PER_PERIOD = 10
WORK_SIZE_RANGE = (512, 2048)
ANGLE_TOLERANCE_DEG = 10.0
#: Square modes accept lattices whose two spacings differ by up to this fraction (a
#: distorted scan stretches a square lattice by a few %; a rectangle of a × a/√2 is not one).
SQUARE_TOLERANCE = 0.15
#: Rectangular modes: the spacing ratio within this fraction of the expected one.
SPACING_TOLERANCE = 0.15
#: Periods the image must span along each of two directions.
MIN_REPEATS = 3
#: A peak counts when it is at least this fraction of the starting peak's height.
MIN_RELATIVE_HEIGHT = 0.35
#: A lattice is accepted when peaks are found at this fraction of the predicted points.
MIN_QUALITY = 0.5
MAX_LATTICE_POINTS = 400
#: Lattice points off the two walked directions needed to confirm a lattice, and how far
#: (in standard errors) the autocorrelation must be higher on them than between them.
MIN_CHECK_POINTS = 4
#: Shortest lattice period that can be measured, in pixels of the working image.
MIN_SPACING_PX = 2.5
MIN_SIGNIFICANCE = 6.0
#: Lattice points must be higher than the points half-way along each direction by at
#: least this fraction of the peak height.
MIN_CONTRAST = 0.15
#: One-sided false-alarm probability of each direction's contrast test (Student's t with
#: the number of check points): few points need a much larger t than many.
FALSE_ALARM = 1e-4
#: The fitted lattice's standard errors are scaled by this factor: the autocorrelation's
#: peak positions are not independent (they come from one image), so the fit's own
#: scatter under-states the error; the factor was set by simulation so that the true error
#: lies within 3 sigma in at least 95 % of noisy repeats (benchmarks/bench_grating_pixel_size.py).
SIGMA_SCALE = 2.0
#: Anisotropy (difference of the pixel sizes along the two lattice directions) worth
#: flagging, and a file calibration difference worth saying, in %.
ANISOTROPY_FLAG_PERCENT = 1.0
CALIBRATION_FLAG_PERCENT = 2.0


def known_spacings(
    mode: str = "grating", spacing_nm=None, mesh: float | None = None
) -> tuple[float, float]:
    """The specimen's periods (nm) along its first and second lattice direction.

    ``spacing_nm`` is one period (nm) for the square modes, two for ``"rectangular"``
    (e.g. a and a/√2 of a [110] perovskite).

    Raises
    ------
    InvalidParameterError
        Unknown mode, or a mode whose spacing is not given or not a positive number.
    """
    if mode not in MODES:
        raise InvalidParameterError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
    if mode == "rectangular":
        try:
            pair = tuple(float(v) for v in np.atleast_1d(spacing_nm))
        except (TypeError, ValueError):
            pair = ()
        if len(pair) != 2 or not all(np.isfinite(v) and v > 0 for v in pair):
            raise InvalidParameterError(
                "mode='rectangular' needs spacing_nm=(a, b): the two lattice periods in nm; "
                f"got {spacing_nm!r}"
            )
        if abs(pair[0] / pair[1] - 1) < 1e-9:
            raise InvalidParameterError("equal spacings are a square lattice: use mode='lattice'")
        return min(pair), max(pair)
    if spacing_nm is not None:
        if isinstance(spacing_nm, bool) or np.ndim(spacing_nm) != 0:
            raise InvalidParameterError(
                f"mode={mode!r} takes one spacing_nm (two only for 'rectangular'); "
                f"got {spacing_nm!r}"
            )
        try:
            spacing_nm = float(spacing_nm)
        except (TypeError, ValueError):
            raise InvalidParameterError(
                f"spacing_nm must be a number of nm; got {spacing_nm!r}"
            ) from None
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
    #: The finder's working reduction: image pixels per pixel of the binned image it worked
    #: on (not the camera's binning, which the image's metadata or the user gives).
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
    #: Standard error of ``pixel_size_nm`` (nm) and of ``angle_deg`` (degrees).
    pixel_size_sigma_nm: float | None = None
    angle_sigma_deg: float | None = None
    #: Pixel size along the first and the second lattice direction (nm).
    pixel_sizes_nm: tuple[float, float] | None = None
    #: How much larger the larger of the two is (%): a distorted or stretched scan.
    anisotropy_percent: float | None = None
    #: The pixel size the file records (nm), and how much the measured one differs (%).
    recorded_pixel_size_nm: float | None = None
    calibration_difference_percent: float | None = None
    #: Alternatives rejected, anisotropy and calibration remarks, in words.
    notes: tuple[str, ...] = ()

    def autocorrelation_pixel(self, lag) -> np.ndarray:
        """Pixel (y, x) of ``autocorrelation`` at a lag given in image pixels."""
        return np.asarray(lag, dtype=float) / self.binning + np.asarray(self.origin)

    def summary_lines(self) -> list[str]:
        """A found lattice in words, one line per aspect, as the widget and the CLI show it."""
        a, b = self.spacing_px
        pa, pb = self.pixel_sizes_nm
        lines = [
            f"pixel size  {self.pixel_size_nm:.5g} ± {self.pixel_size_sigma_nm:.2g} nm/px, "
            f"grid angle {self.angle_deg:.3f} ± {self.angle_sigma_deg:.2g}°",
            f"per direction {pa:.5g} / {pb:.5g} nm: anisotropy {self.anisotropy_percent:.2f} %"
            + ("  ⚠ over 1 %" if self.anisotropy_percent > 1.0 else ""),
            f"spacing {a:.3f} / {b:.3f} px over {self.intervals[0]} / {self.intervals[1]} "
            f"intervals, {self.angle_between_deg:.2f}° apart; worked at 1/{self.binning} size; "
            f"{self.quality:.0%} of lattice peaks found",
        ]
        distortion = self.distortion()
        if distortion is not None:
            lines.append(
                f"stretch {distortion.distortion_percent:.2f} % along {distortion.angle_deg:.1f}°"
                + (
                    f": MotionCor2 {distortion.motioncor2_argument()}"
                    if distortion.significant
                    else " (within noise: no correction)"
                )
            )
        if self.recorded_pixel_size_nm:
            lines.append(
                f"the file says {self.recorded_pixel_size_nm:.5g} nm/px: the lattice gives "
                f"{self.calibration_difference_percent:+.2f} %"
            )
        return lines

    def history_values(self) -> tuple[dict, dict]:
        """(values, standard errors) kept in the calibration history."""
        return (
            {"pixel_size_nm": self.pixel_size_nm, "angle_deg": self.angle_deg},
            {"pixel_size_nm": self.pixel_size_sigma_nm, "angle_deg": self.angle_sigma_deg},
        )

    def distortion(self):
        """The :class:`~napari_emcal.grating.distortion.MagnificationDistortion` of the
        image (MotionCor2's ``-Mag`` triple), or None without a lattice."""
        from .distortion import distortion_of_result

        if not self.found or self.lattice_vectors is None:
            return None
        return distortion_of_result(
            {
                "lattice_vectors_px": self.lattice_vectors,
                "spacing_nm": self.spacing_nm,
                "pixel_size_nm": self.pixel_size_nm,
                "pixel_size_sigma_nm": self.pixel_size_sigma_nm,
            }
        )

    def to_dict(self) -> dict:
        """The measurements as plain JSON-able values (no images)."""
        distortion = self.distortion()
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
            "working_reduction": self.binning,
            "quality": self.quality,
            "residual_px": self.residual_px,
            "start_peak": None if self.start_peak is None else list(self.start_peak),
            "pixel_size_sigma_nm": self.pixel_size_sigma_nm,
            "angle_sigma_deg": self.angle_sigma_deg,
            "pixel_sizes_nm": None if self.pixel_sizes_nm is None else list(self.pixel_sizes_nm),
            "anisotropy_percent": self.anisotropy_percent,
            "recorded_pixel_size_nm": self.recorded_pixel_size_nm,
            "calibration_difference_percent": self.calibration_difference_percent,
            "notes": list(self.notes),
            "lattice_vectors_px": None
            if self.lattice_vectors is None
            else np.asarray(self.lattice_vectors).tolist(),
            "distortion": None if distortion is None else distortion.to_dict(),
        }


#: Longest side over shortest side of an image the lattice is measured in.
MAX_ASPECT = 16


def find_pixel_size(
    image,
    *,
    mode: str = "grating",
    spacing_nm: float | None = None,
    mesh: float | None = None,
    marker=None,
    binned_size: int | None = None,
    recorded_pixel_size_nm: float | None = None,
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
        ``spacing_nm`` (e.g. atomic columns). ``"rectangular"``: a rectangular lattice of
        the two periods ``spacing_nm=(a, b)`` (e.g. a [110] perovskite: a and a/√2).

        The lattice the mode describes is the image's period: where the autocorrelation's
        finest lattice has a sub-lattice whose points are clearly higher (a perovskite's
        A-site columns against the B-site ones), the sub-lattice is the period and the
        finer one is named in ``notes``. A lattice that is not the one the mode describes
        (not square, wrong ratio) gives ``found=False`` with the nearest match.
    spacing_nm : float or (float, float), optional
        Period of the specimen in nm (overrides the grating's; required for "lattice"), or
        the two periods for "rectangular".
    mesh : float, optional
        Openings per inch, for ``mode="mesh"``.
    marker : (dy, dx), optional
        A point of the autocorrelation near the peak to start from, as a lag from its
        centre in image pixels (``PixelSizeResult.peaks`` uses the same coordinates). Use
        it when the automatic choice picked the wrong series.
    binned_size : int, optional
        Working size (pixels along the larger axis) to bin the image to; by default it is
        chosen from the number of repeats across the image.
    recorded_pixel_size_nm : float, optional
        The pixel size the file records: the result compares the measured one with it.

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
    for period in known:
        plausible("spacing_nm", period, label="the specimen period (nm)")
    image = _validated_image(image)
    if marker is not None and isinstance(marker, str):
        raise InvalidParameterError(f"marker must be a lag (dy, dx) in pixels; got {marker!r}")
    if marker is not None:
        try:
            marker = np.asarray(marker, dtype=float)
        except (TypeError, ValueError):
            raise InvalidParameterError(
                f"marker must be a lag (dy, dx) in pixels; got {marker!r}"
            ) from None
        if marker.shape != (2,) or not np.all(np.isfinite(marker)) or np.hypot(*marker) < 1:
            raise InvalidParameterError(
                f"marker must be a lag (dy, dx) in pixels away from the centre; got {marker}"
            )
        if np.any(np.abs(marker) >= np.asarray(image.shape) / 2):
            raise InvalidParameterError(
                f"marker ({marker[0]:g}, {marker[1]:g}) px lies outside the autocorrelation of a "
                f"{image.shape[0]} x {image.shape[1]} px image: a lag must be less than half "
                "the image in each direction"
            )
    if max(image.shape) > MAX_ASPECT * min(image.shape):
        raise InvalidParameterError(
            f"the image is {image.shape[0]} x {image.shape[1]} px: too elongated to measure a "
            f"2D lattice (at most {MAX_ASPECT}:1); crop a region closer to square"
        )
    if binned_size is not None and (int(binned_size) != binned_size or binned_size < 64):
        raise InvalidParameterError(f"binned_size must be an integer >= 64; got {binned_size}")

    if recorded_pixel_size_nm is not None and not (
        np.isfinite(recorded_pixel_size_nm) and recorded_pixel_size_nm > 0
    ):
        raise InvalidParameterError(
            f"recorded_pixel_size_nm must be a positive number; got {recorded_pixel_size_nm}"
        )
    if float(np.ptp(image)) == 0:
        return _failure("no lattice found: the image is uniform", mode, known, 1, None)
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
        # the user chose the first lattice vector: the lattice it spans with the vector 90°
        # further at the mode's spacing ratio, as marked (not reduced to a finer one)
        first = marker / binning
        second = np.array([first[1], -first[0]]) * (known[1] / known[0])
        lattice = _confirm(acf, first, second, working.shape, primitive=False)
        if "vectors" not in lattice or lattice["quality"] < MIN_QUALITY:
            reason = lattice.get("reason") or f"only {lattice['quality']:.0%} of its peaks"
            return _failure(
                f"no lattice found from the marker: {reason}",
                mode,
                known,
                binning,
                acf,
                start=first,
            )
        return _interpret(lattice, [], mode, known, binning, acf, recorded_pixel_size_nm)
    starts = _start_candidates(acf)
    if len(starts) < 2:
        return _failure(
            "no lattice found: the autocorrelation has fewer than two peaks besides the centre",
            mode,
            known,
            binning,
            acf,
        )
    lattice = _finest_lattice(acf, starts, working.shape)
    if "vectors" not in lattice:
        return _failure(
            f"no lattice found: {lattice.get('reason', 'no lattice')}",
            mode,
            known,
            binning,
            acf,
            start=lattice.get("start"),
        )
    lattice, rejected = _period_lattice(acf, lattice, working.shape)
    return _interpret(lattice, rejected, mode, known, binning, acf, recorded_pixel_size_nm)


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


# -- the lattice the image holds -----------------------------------------------------------
def _reduced(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The shortest basis of the lattice spanned by ``a`` and ``b`` (Lagrange-Gauss)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if np.dot(a, a) > np.dot(b, b):
        a, b = b, a
    for _ in range(50):
        k = round(float(np.dot(a, b) / np.dot(a, a)))
        if k == 0:
            break
        b = b - k * a
        if np.dot(b, b) < np.dot(a, a):
            a, b = b, a
    return a, b


def _area(a, b) -> float:
    return abs(float(a[0] * b[1] - a[1] * b[0]))


def _angle_between(a, b) -> float:
    """Angle between two directions (degrees, 0-180)."""
    cos = np.dot(a, b) / (np.hypot(*a) * np.hypot(*b))
    return math.degrees(math.acos(float(np.clip(cos, -1, 1))))


def _repeats(shape, vector) -> float:
    """How many periods of ``vector`` the image spans along its direction."""
    unit = np.abs(np.asarray(vector, float)) / float(np.hypot(*vector))
    extent = unit[0] * shape[0] + unit[1] * shape[1]
    return float(extent / np.hypot(*vector))


def _finest_lattice(acf: Autocorrelation, starts: list, shape) -> dict:
    """The finest lattice the autocorrelation confirms, from pairs of candidate peaks.

    Every pair of non-collinear candidates spans a lattice; its shortest basis is checked
    against the whole autocorrelation (:func:`_confirm`). The confirmed lattice with the
    smallest cell wins (a coarser confirmed one is a sub-lattice of it).
    """
    tried, confirmed, best_failure = set(), [], None
    for i, a in enumerate(starts[:6]):
        for b in starts[i + 1 : 8]:
            if abs(math.sin(math.radians(_angle_between(a, b)))) < math.sin(math.radians(25)):
                continue  # collinear: the same direction
            ra, rb = _reduced(a, b)
            key = tuple(np.round(np.concatenate([ra, rb]) / 0.5).astype(int))
            if key in tried:
                continue
            tried.add(key)
            lattice = _confirm(acf, ra, rb, shape)
            if "vectors" in lattice and lattice["quality"] >= MIN_QUALITY:
                confirmed.append(lattice)
            elif best_failure is None or lattice.get("quality", 0) > best_failure.get("quality", 0):
                best_failure = lattice
    if not confirmed:
        return best_failure or {
            "reason": "no two independent peak directions",
            "quality": 0.0,
            "start": starts[0],
        }
    finest = min(confirmed, key=lambda lat: (round(_area(*lat["vectors"]), 1), -lat["quality"]))
    return _finest(acf, finest, shape)


def _confirm(
    acf: Autocorrelation, a0: np.ndarray, b0: np.ndarray, shape, *, primitive: bool = True
) -> dict:
    """Walk both directions, check the whole lattice, fit it; a dict of what was found
    (``reason`` says why not when it is not a lattice).

    The autocorrelation must be lower half-way between lattice points along ``a``, along
    ``b`` and, for a ``primitive`` lattice, at the cell centres too: stripes give a
    "lattice" of points on their ridges whose cell centres lie on a ridge as well. (A
    lattice marked by the user may be a coarser one whose cell centres are peaks.)"""
    out = {"start": a0, "quality": 0.0}
    pos, h = refine_peaks(acf, np.array([a0, b0]), max(2.0, 0.15 * float(np.hypot(*a0))))
    if not np.all(np.isfinite(h)) or np.any(h <= 0):
        out["reason"] = "no peak at one of the two lattice directions"
        return out
    height = float(h.max())
    if h.min() < MIN_RELATIVE_HEIGHT * height:
        out["reason"] = "the second direction's peak is too weak"
        return out
    if min(np.hypot(*pos[0]), np.hypot(*pos[1])) < MIN_SPACING_PX:
        out["reason"] = "a lattice direction is the flank of the central peak"
        return out
    mult_a, pos_a = _walk(acf, pos[0], height)
    mult_b, pos_b = _walk(acf, pos[1], height)
    spacing_a, spacing_b = pos_a[-1] / mult_a[-1], pos_b[-1] / mult_b[-1]
    repeats = min(_repeats(shape, spacing_a), _repeats(shape, spacing_b))
    if repeats < MIN_REPEATS:
        out["reason"] = (
            f"the image spans only {repeats:.1f} periods along one lattice direction "
            f"(at least {MIN_REPEATS} are needed in each of two directions)"
        )
        return out
    walked = [(m, 0) for m in mult_a] + [(0, m) for m in mult_b]
    walked_pos = np.array(pos_a + pos_b)
    vectors0 = np.array([spacing_a, spacing_b])
    others = _lattice_points(acf, vectors0, set(walked))
    if len(others) < MIN_CHECK_POINTS:
        out["reason"] = (
            "too few repeats to confirm a lattice (the autocorrelation shows fewer than "
            f"{MIN_CHECK_POINTS} lattice points off the two directions)"
        )
        return out
    predicted = others @ vectors0
    radius = max(1.0, 0.05 * min(np.hypot(*spacing_a), np.hypot(*spacing_b)))
    found, heights = refine_peaks(acf, predicted, radius)
    # The same search half-way between lattice points, along each direction apart: on a
    # lattice both are lower; on stripes (one direction only) or column noise the
    # autocorrelation is a ridge along the other, as high half-way as on the "points".
    significances, betweens, contrasts = [], [], []
    for offset in (0.5 * spacing_a, 0.5 * spacing_b, 0.5 * (spacing_a + spacing_b)):
        between = refine_peaks(acf, predicted + offset, radius)[1]
        usable = np.isfinite(heights) & np.isfinite(between)
        contrast = heights[usable] - between[usable]
        significances.append(
            contrast.mean() / max(contrast.std(ddof=1), 1e-12) * math.sqrt(contrast.size)
            if contrast.size >= MIN_CHECK_POINTS
            else 0.0
        )
        betweens.append(between)
        contrasts.append(float(contrast.mean()) if contrast.size else 0.0)
    between = np.mean(betweens, axis=0)
    needed = max(MIN_SIGNIFICANCE, float(student_t.ppf(1 - FALSE_ALARM, len(others) - 1)))
    # significant, and large: a smooth ridge (stripes) differs by a hair, very regularly
    tested = 3 if primitive else 2
    if min(significances[:tested]) < needed or min(contrasts[:tested]) < MIN_CONTRAST * height:
        out["reason"] = (
            "the autocorrelation is not higher at the predicted lattice points than between "
            "them along both directions: no 2D periodic structure (noise, stripes, texture)"
        )
        return out
    usable = np.isfinite(heights) & np.isfinite(between)
    confirmed = (heights >= MIN_RELATIVE_HEIGHT * height) & (heights > between)
    quality = float(confirmed[usable].mean()) if usable.any() else 0.0
    indices = np.vstack([np.array(walked, float), others[confirmed]])
    points = np.vstack([walked_pos, found[confirmed]])
    vectors, residual, keep, covariance = _fit_lattice(acf, indices, points)
    out.update(
        vectors=vectors,
        residual=residual,
        covariance=covariance,
        quality=quality,
        significance=float(min(significances[:2])),
        intervals=(max(mult_a), max(mult_b)),
        points=points[keep],
        series=_series(indices[keep]),
        height=height,
        start=pos[0],
    )
    return out


def _finest(acf: Autocorrelation, lattice: dict, shape) -> dict:
    """A finer lattice hidden by the central peak's flank, when the autocorrelation holds
    one: peaks at fractions (i a + j b) / n of the cell (n = 2…5) that form a confirmed
    lattice with a smaller cell replace it."""
    a, b = lattice["vectors"]
    area = _area(a, b)
    fractions = [
        (i, j, n)
        for n in range(2, 6)
        for i in range(n)
        for j in range(n)
        if (i, j) != (0, 0) and math.gcd(math.gcd(i, j), n) == 1
    ]
    vectors = np.array([(i * a + j * b) / n for i, j, n in fractions])
    shifts = np.array([[0, 0], [1, 0], [0, 1], [1, 1]]) @ np.array([a, b])
    options = vectors[:, None, :] - shifts[None, :, :]
    vectors = options[np.arange(len(vectors)), np.argmin(np.hypot(*options.T).T, axis=1)]
    _, heights = refine_peaks(acf, vectors, 1.0)
    # points of a lattice are about equally high: a finer lattice's peaks match the coarse
    # one's (lower ones are sidelobes, or a sub-lattice's, which _period_lattice weighs)
    tall = np.flatnonzero(
        (heights >= 0.7 * lattice["height"]) & (np.hypot(*vectors.T) >= MIN_SPACING_PX)
    )
    for k in tall[np.argsort(np.hypot(*vectors[tall].T))]:
        # the finer lattice holds the coarse one: it is spanned by the new vector and the
        # shorter of a and b, reduced
        for other in (a, b):
            if abs(math.sin(math.radians(_angle_between(vectors[k], other)))) < 0.3:
                continue
            finer = _confirm(acf, *_reduced(vectors[k], other), shape)
            if "vectors" not in finer or finer["quality"] < max(
                MIN_QUALITY, lattice["quality"] - 0.1
            ):
                continue
            fa, fb = finer["vectors"]
            multiples = np.linalg.solve(np.array([fa, fb]).T, np.array([a, b]).T)
            whole = np.all(np.abs(multiples - np.rint(multiples)) < 0.1)
            if whole and _area(fa, fb) < 0.9 * area:
                return _finest(acf, finer, shape)
    return lattice


#: A sub-lattice is the image's period when the other points of the finest lattice are at
#: most this fraction as high as its own (a perovskite's B-site columns, catalase's weak
#: 8.75 nm planes): translations of the image repeat only on the sub-lattice.
SUBLATTICE_RATIO = 0.8


def _period_lattice(acf: Autocorrelation, lattice: dict, shape) -> tuple[dict, list[dict]]:
    """The lattice of the image's true period: the finest confirmed one, or the sub-lattice
    of index 2 or 4 whose points are clearly higher than the rest. Returns it and the
    finer alternatives it rejected."""
    rejected = []
    for _ in range(3):
        a, b = lattice["vectors"]
        indices = _lattice_points(acf, np.array([a, b]), set())
        if len(indices) < 2 * MIN_CHECK_POINTS:
            break
        radius = max(1.0, 0.05 * min(np.hypot(*a), np.hypot(*b)))
        heights = refine_peaks(acf, indices @ np.array([a, b]), radius)[1]
        usable = np.isfinite(heights)
        i, j, heights = indices[usable, 0], indices[usable, 1], heights[usable]
        choices = {
            "centred": (((i + j) % 2 == 0), (a + b, a - b), math.sqrt(2)),
            "doubled along the first direction": ((i % 2 == 0), (2 * a, b), 2.0),
            "doubled along the second direction": ((j % 2 == 0), (a, 2 * b), 2.0),
            "doubled along both": (((i % 2 == 0) & (j % 2 == 0)), (2 * a, 2 * b), 2.0),
            "tripled along the first direction": ((i % 3 == 0), (3 * a, b), 3.0),
            "tripled along the second direction": ((j % 3 == 0), (a, 3 * b), 3.0),
        }
        best = None
        for name, (member, basis, factor) in choices.items():
            inside, outside = heights[member], heights[~member]
            if inside.size < MIN_CHECK_POINTS or outside.size < MIN_CHECK_POINTS:
                continue
            ratio = float(np.median(outside) / max(np.median(inside), 1e-12))
            spread = np.sqrt(inside.var(ddof=1) / inside.size + outside.var(ddof=1) / outside.size)
            separated = (inside.mean() - outside.mean()) / max(spread, 1e-12)
            if (
                ratio <= SUBLATTICE_RATIO
                and separated >= MIN_SIGNIFICANCE
                and (best is None or ratio < best[0])
            ):
                best = (ratio, name, basis, factor)
        if best is None:
            break
        ratio, name, basis, factor = best
        coarse = _confirm(acf, *_reduced(*basis), shape)
        if "vectors" not in coarse or coarse["quality"] < MIN_QUALITY:
            break
        rejected.append(
            {
                "spacings": tuple(float(np.hypot(*v)) for v in (a, b)),
                "ratio": ratio,
                "name": name,
                "factor": factor,
            }
        )
        lattice = coarse
    return lattice, rejected


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
    """Weighted least-squares lattice vectors; far peaks (high envelope·distance) weigh most.

    Returns the vectors (rows a, b), the RMS residual, the peaks kept and the covariance
    of the four vector components (order a_y, b_y, a_x, b_x).
    """
    index = np.rint(points + acf.origin).astype(int)
    weight = acf.envelope[index[:, 0], index[:, 1]].astype(float) ** 2
    keep = np.ones(len(points), bool)
    for _ in range(2):  # one pass of outlier rejection
        w = np.sqrt(weight[keep])[:, None]
        vectors, *_ = np.linalg.lstsq(indices[keep] * w, points[keep] * w, rcond=None)
        misfit = np.hypot(*(indices @ vectors - points).T)
        keep = misfit <= max(1.0, 3 * float(np.sqrt(np.mean(misfit[keep] ** 2))))
    residual = float(np.sqrt(np.mean(misfit[keep] ** 2)))
    design = indices[keep] * np.sqrt(weight[keep])[:, None]
    n = int(keep.sum())
    # residual variance per coordinate (weighted), floored at a tenth of a pixel: peaks
    # are located to about that on a noise-free lattice
    resid = (indices[keep] @ vectors - points[keep]) * np.sqrt(weight[keep])[:, None]
    variance = max(float((resid**2).sum()) / max(2 * (n - 2), 1), 0.01 * float(weight[keep].mean()))
    inverse = np.linalg.pinv(design.T @ design)
    covariance = np.zeros((4, 4))
    covariance[:2, :2] = covariance[2:, 2:] = variance * inverse
    return vectors, residual, keep, covariance


def _length_sigma(vector, covariance_yx) -> float:
    """Standard error of a vector's length from the covariance of its (y, x) components."""
    unit = np.asarray(vector) / np.hypot(*vector)
    return float(np.sqrt(max(unit @ covariance_yx @ unit, 0.0)))


def _series(indices: np.ndarray) -> np.ndarray:
    series = np.full(len(indices), 2)
    series[indices[:, 1] == 0] = 0
    series[(indices[:, 0] == 0) & (indices[:, 1] != 0)] = 1
    return series


def _orient_square(a, b, intervals, series):
    """A square lattice's first direction: the one of ±a, ±b within (-45°, 45°]."""
    options = [
        (a, b, intervals, False),
        (b, -a, intervals[::-1], True),
        (-a, -b, intervals, False),
        (-b, a, intervals[::-1], True),
    ]
    for first, second, counted, swapped in options:
        if -45 < _angle(first) <= 45:
            if swapped:
                series = np.where(series == 2, 2, 1 - series)
            return first, second, counted, series
    return a, b, intervals, series


def _interpret(lattice, rejected, mode, known, binning, acf, recorded) -> PixelSizeResult:
    """The lattice read in the mode's terms: the pixel size along each direction with its
    standard error, or no answer when the lattice is not the one the mode describes."""
    a, b = lattice["vectors"] * binning
    covariance = lattice["covariance"] * binning**2
    sigma_a, sigma_b = math.sqrt(covariance[0, 0]), math.sqrt(covariance[1, 1])
    intervals, series = lattice["intervals"], lattice["series"]
    between = _angle_between(a, b)
    la, lb = float(np.hypot(*a)), float(np.hypot(*b))
    square = abs(known[1] / known[0] - 1) < 1e-9
    described = _describe(la, lb, between)

    def refuse(reason: str) -> PixelSizeResult:
        return _failure(
            f"no lattice found for mode={mode!r}: {reason}",
            mode,
            known,
            binning,
            acf,
            start=lattice["start"],
        )

    if square:
        if abs(between - 90) > ANGLE_TOLERANCE_DEG or abs(la / lb - 1) > SQUARE_TOLERANCE:
            return refuse(
                f"the image holds {described}, not a square lattice (spacings "
                f"{abs(la / lb - 1):.0%} apart; at most {SQUARE_TOLERANCE:.0%} for a square "
                "mode). Nearest match: mode='rectangular' with its two spacings"
            )
        a, b, intervals, series = _orient_square(a, b, intervals, series)
        known_a, known_b = known
    else:
        if abs(between - 90) > ANGLE_TOLERANCE_DEG:
            # a centred rectangular lattice: its conventional cell is rectangular
            a, b = a + b, a - b
            la, lb, between = float(np.hypot(*a)), float(np.hypot(*b)), _angle_between(a, b)
            sigma_a = sigma_b = math.hypot(sigma_a, sigma_b)
        if lb < la:
            a, b, la, lb, sigma_a, sigma_b = b, a, lb, la, sigma_b, sigma_a
            intervals, series = intervals[::-1], np.where(series == 2, 2, 1 - series)
        expected = max(known) / min(known)
        if abs(between - 90) > ANGLE_TOLERANCE_DEG or abs((lb / la) / expected - 1) > (
            SPACING_TOLERANCE
        ):
            nearest = (
                "mode='lattice' (or 'grating') with its spacing"
                if abs(la / lb - 1) <= SQUARE_TOLERANCE and abs(between - 90) <= 10
                else "mode='rectangular' with the spacings of this lattice"
            )
            return refuse(
                f"the image holds {described}; {mode} needs a rectangular lattice with "
                f"spacings in the ratio {expected:.2f}. Nearest match: {nearest}"
            )
        if not -90 < _angle(a) <= 90:
            a, b = -a, -b
        known_a, known_b = min(known), max(known)
        known = (known_a, known_b)
    if (_angle(b) - _angle(a)) % 360 > 180:
        b = -b  # the second direction 90° clockwise from the first (as napari shows it)
    pixel_a, pixel_b = known_a / la, known_b / lb
    pixel_size = 0.5 * (pixel_a + pixel_b)
    sigma = SIGMA_SCALE * 0.5 * math.hypot(pixel_a * sigma_a / la, pixel_b * sigma_b / lb)
    angle_sigma = SIGMA_SCALE * math.degrees(sigma_a / la)
    anisotropy = 100.0 * (max(pixel_a, pixel_b) / min(pixel_a, pixel_b) - 1)
    notes = [
        f"a lattice at 1/{r['factor']:.3g} of this spacing (spacings "
        f"{r['spacings'][0] * binning:.2f} and {r['spacings'][1] * binning:.2f} px) also fits, "
        f"with peaks {r['ratio']:.2f} as high: rejected, the image repeats on the "
        f"{r['name']} sub-lattice"
        for r in rejected
    ]
    if anisotropy > ANISOTROPY_FLAG_PERCENT:
        notes.append(
            f"anisotropic: the pixel sizes along the two lattice directions differ by "
            f"{anisotropy:.1f} % ({pixel_a:.5g} and {pixel_b:.5g} nm): a distorted scan or "
            "a stretched image; the average is not the whole story"
        )
    difference = None
    if recorded is not None:
        difference = 100.0 * (pixel_size / recorded - 1)
        if abs(difference) > CALIBRATION_FLAG_PERCENT:
            notes.append(
                f"the microscope's calibration differs by {difference:+.1f} %: the file "
                f"says {recorded:.5g} nm, the lattice gives {pixel_size:.5g} nm"
            )
    message = f"lattice found ({lattice['quality']:.0%} of predicted peaks)"
    return PixelSizeResult(
        found=True,
        message="; ".join([message, *notes]),
        mode=mode,
        spacing_nm=known,
        pixel_size_nm=float(pixel_size),
        angle_deg=float(_angle(a)),
        spacing_px=(la, lb),
        intervals=tuple(int(i) for i in intervals),
        angle_between_deg=float((_angle(b) - _angle(a)) % 360),
        binning=binning,
        quality=float(lattice["quality"]),
        residual_px=float(lattice["residual"] * binning),
        lattice_vectors=np.array([a, b]),
        autocorrelation=acf.image,
        origin=acf.origin,
        peaks=lattice["points"] * binning,
        peak_series=series,
        start_peak=tuple(float(v) for v in lattice["start"] * binning),
        pixel_size_sigma_nm=float(sigma),
        angle_sigma_deg=float(angle_sigma),
        pixel_sizes_nm=(float(pixel_a), float(pixel_b)),
        anisotropy_percent=float(anisotropy),
        recorded_pixel_size_nm=recorded,
        calibration_difference_percent=difference,
        notes=tuple(notes),
    )


def _describe(la: float, lb: float, between: float) -> str:
    if abs(la / lb - 1) <= 0.02 and abs(between - 90) <= 2:
        return f"a square lattice of {la:.2f} px"
    return f"a lattice of {la:.2f} x {lb:.2f} px at {between:.1f}°"


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
