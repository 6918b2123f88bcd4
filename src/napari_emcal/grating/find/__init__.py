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

import numpy as np

from ..._checks import image_2d, plausible
from ...errors import InvalidParameterError
from ..autocorrelation import (
    bin_image,
    bright_region,
    estimate_period,
    filtered_autocorrelation,
)
from .interpret import _failure, _interpret
from .lattice import MIN_QUALITY, _confirm, _finest_lattice, _period_lattice, _start_candidates
from .modes import CATALASE_NM, GRATING_LINES_PER_MM, MODES, known_spacings
from .result import PixelSizeResult

__all__ = [
    "CATALASE_NM",
    "GRATING_LINES_PER_MM",
    "MODES",
    "PixelSizeResult",
    "find_pixel_size",
    "known_spacings",
]

#: The working image holds about this many pixels per period, and WORK_SIZE_RANGE pixels
#: along its larger side.
WORK_PX_PER_PERIOD = 10
WORK_SIZE_RANGE = (512, 2048)
#: The autocorrelation keeps lags up to this fraction of the working image: more on a
#: small working image (at most SMALL_WORKING_PX), where it is cheap.
SMALL_WORKING_PX = 1024
MAX_LAG_FRACTION = (0.7, 0.5)

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
    small = max(working.shape) <= SMALL_WORKING_PX  # cheap enough to keep more lags
    acf = filtered_autocorrelation(
        working,
        weight,
        period_px=period_work,
        max_lag_fraction=MAX_LAG_FRACTION[0] if small else MAX_LAG_FRACTION[1],
    )

    if marker is not None:
        # the user chose the first lattice vector: the lattice it spans with the vector 90°
        # further at the mode's spacing ratio, as marked (not reduced to a finer one)
        first = marker / binning
        second = np.array([first[1], -first[0]]) * (known[1] / known[0])
        lattice = _confirm(acf, first, second, working.shape, primitive=False)
        if not lattice.found or lattice.quality < MIN_QUALITY:
            reason = lattice.reason or f"only {lattice.quality:.0%} of its peaks"
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
    if not lattice.found:
        return _failure(
            f"no lattice found: {lattice.reason or 'no lattice'}",
            mode,
            known,
            binning,
            acf,
            start=lattice.start,
        )
    lattice, rejected = _period_lattice(acf, lattice, working.shape)
    return _interpret(lattice, rejected, mode, known, binning, acf, recorded_pixel_size_nm)


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
