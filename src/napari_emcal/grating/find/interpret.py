"""The lattice read in a mode's terms: pixel size and angle with their standard errors,
or no answer when the lattice is not the one the mode describes."""

from __future__ import annotations

import math

import numpy as np

from .lattice import Lattice, _angle, _angle_between, _orient_square
from .result import PixelSizeResult

#: The two lattice directions must be this close to 90° (degrees) in every mode.
ANGLE_TOLERANCE_DEG = 10.0
#: Square modes accept lattices whose two spacings differ by up to this fraction (a
#: distorted scan stretches a square lattice by a few %; a rectangle of a × a/√2 is not one).
SQUARE_TOLERANCE = 0.15
#: Rectangular modes: the spacing ratio within this fraction of the expected one.
SPACING_TOLERANCE = 0.15
#: The fitted lattice's standard errors are scaled by this factor: the autocorrelation's
#: peak positions are not independent (they come from one image), so the fit's own
#: scatter under-states the error; the factor was set by simulation so that the true error
#: lies within 3 sigma in at least 95 % of noisy repeats (benchmarks/bench_grating_pixel_size.py).
SIGMA_SCALE = 2.0
#: Anisotropy (difference of the pixel sizes along the two lattice directions) worth
#: flagging, and a file calibration difference worth saying, in %.
ANISOTROPY_FLAG_PERCENT = 1.0
CALIBRATION_FLAG_PERCENT = 2.0


def _interpret(lattice: Lattice, rejected, mode, known, binning, acf, recorded) -> PixelSizeResult:
    """The lattice read in the mode's terms: the pixel size along each direction with its
    standard error, or no answer when the lattice is not the one the mode describes."""
    a, b = lattice.vectors * binning
    covariance = lattice.covariance * binning**2
    sigma_a, sigma_b = math.sqrt(covariance[0, 0]), math.sqrt(covariance[1, 1])
    intervals, series = lattice.intervals, lattice.series
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
            start=lattice.start,
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
                if abs(la / lb - 1) <= SQUARE_TOLERANCE and abs(between - 90) <= ANGLE_TOLERANCE_DEG
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
    message = f"lattice found ({lattice.quality:.0%} of predicted peaks)"
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
        quality=float(lattice.quality),
        residual_px=float(lattice.residual * binning),
        lattice_vectors=np.array([a, b]),
        autocorrelation=acf.image,
        origin=acf.origin,
        peaks=lattice.points * binning,
        peak_series=series,
        start_peak=tuple(float(v) for v in lattice.start * binning),
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
