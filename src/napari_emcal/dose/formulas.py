"""Electron flux and dose from beam current and illuminated or scanned area.

SI inputs (amperes, metres, seconds); results in electrons per Å² per second (flux) and
electrons per Å² (dose), the units the in situ (S)TEM literature reports.
"""

from __future__ import annotations

import math

from ..errors import InvalidParameterError

__all__ = [
    "ELEMENTARY_CHARGE",
    "flux_from_counts",
    "frame_time",
    "stem_flux",
    "stem_frame_dose",
    "stem_probe_dose",
    "tem_flux",
]

#: Coulomb (exact, SI 2019).
ELEMENTARY_CHARGE = 1.602176634e-19
_M2_PER_A2 = 1e-20


def _number(value, name: str, *, positive: bool = True) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise InvalidParameterError(f"{name} must be a number; got {value!r}") from exc
    if not math.isfinite(number):
        raise InvalidParameterError(f"{name} must be finite; got {value!r}")
    if positive and number <= 0:
        raise InvalidParameterError(f"{name} must be positive; got {value!r}")
    if not positive and number < 0:
        raise InvalidParameterError(f"{name} must not be negative; got {value!r}")
    return number


def _pair(value, name: str) -> tuple[float, float]:
    """A (y, x) pair of positive lengths from a pair or a scalar."""
    if isinstance(value, (tuple, list)) or getattr(value, "ndim", 0) == 1:
        if len(value) != 2:
            raise InvalidParameterError(
                f"{name} must be a (y, x) pair or one number; got {value!r}"
            )
        return _number(value[0], f"{name} (y)"), _number(value[1], f"{name} (x)")
    number = _number(value, name)
    return number, number


def _current(current) -> float:
    return _number(current, "beam current (A)", positive=False)


def tem_flux(current, *, illuminated_area=None, illuminated_diameter=None) -> float:
    """Flux of a parallel beam, e⁻/Å²/s: I / (e · A).

    Parameters
    ----------
    current : float
        Beam current at the specimen, A.
    illuminated_area : float, optional
        Illuminated area at the specimen, m².
    illuminated_diameter : float, optional
        Beam diameter at the specimen, m (A = π D² / 4). Give this or the area.
    """
    if (illuminated_area is None) == (illuminated_diameter is None):
        raise InvalidParameterError("give the illuminated area or the beam diameter (one of them)")
    if illuminated_area is None:
        area = math.pi * _number(illuminated_diameter, "beam diameter (m)") ** 2 / 4
    else:
        area = _number(illuminated_area, "illuminated area (m²)")
    return _current(current) / ELEMENTARY_CHARGE / (area / _M2_PER_A2)


def stem_flux(current, fov) -> float:
    """Scan-averaged flux, e⁻/Å²/s: I / (e · FOV_y · FOV_x).

    Parameters
    ----------
    current : float
        Probe current, A.
    fov : float or (float, float)
        Scanned field of view (y, x), m; one number for a square field.
    """
    fov_y, fov_x = _pair(fov, "field of view (m)")
    return _current(current) / ELEMENTARY_CHARGE / (fov_y * fov_x / _M2_PER_A2)


def frame_time(scan_shape, dwell_time, flyback_time=0.0) -> float:
    """Time for one scan frame, s: n_y · (n_x · dwell + flyback).

    ``flyback_time`` is the beam's return time at the end of each scan line (s), during
    which it still illuminates the specimen unless blanked.
    """
    try:
        ny, nx = (int(n) for n in scan_shape)
    except (TypeError, ValueError) as exc:
        raise InvalidParameterError(f"scan shape must be (n_y, n_x); got {scan_shape!r}") from exc
    if ny <= 0 or nx <= 0:
        raise InvalidParameterError(f"scan shape must be positive; got {scan_shape!r}")
    dwell = _number(dwell_time, "dwell time (s)")
    flyback = _number(flyback_time, "flyback time (s)", positive=False)
    return ny * (nx * dwell + flyback)


def stem_frame_dose(current, fov, scan_shape, dwell_time, flyback_time=0.0) -> float:
    """Scan-averaged dose of one frame, e⁻/Å²: I · t_frame / (e · FOV_y · FOV_x).

    Parameters
    ----------
    current : float
        Probe current, A.
    fov : float or (float, float)
        Scanned field of view (y, x), m.
    scan_shape : (int, int)
        Scan positions (n_y, n_x).
    dwell_time : float
        Time per probe position, s (1 / frame rate for 4D STEM).
    flyback_time : float
        Line flyback time, s (see :func:`frame_time`).
    """
    return stem_flux(current, fov) * frame_time(scan_shape, dwell_time, flyback_time)


def stem_probe_dose(current, step, dwell_time) -> float:
    """Dose per probe position, e⁻/Å²: I · dwell / (e · step_y · step_x).

    Parameters
    ----------
    current : float
        Probe current, A.
    step : float or (float, float)
        Scan step (y, x), m.
    dwell_time : float
        Time per probe position, s.
    """
    step_y, step_x = _pair(step, "scan step (m)")
    dwell = _number(dwell_time, "dwell time (s)")
    return _current(current) * dwell / ELEMENTARY_CHARGE / (step_y * step_x / _M2_PER_A2)


def flux_from_counts(counts_per_pixel_per_s, counts_per_electron, pixel_size) -> float:
    """Flux from camera counts of the bare beam, e⁻/Å²/s.

    Parameters
    ----------
    counts_per_pixel_per_s : float
        Mean counts per camera pixel per second in the illuminated region.
    counts_per_electron : float
        Camera conversion factor (1 for a counting detector).
    pixel_size : float or (float, float)
        Camera pixel size referred to the specimen (y, x), m.
    """
    rate = _number(counts_per_pixel_per_s, "counts per pixel per second", positive=False)
    gain = _number(counts_per_electron, "counts per electron")
    size_y, size_x = _pair(pixel_size, "pixel size (m)")
    return rate / gain / (size_y * size_x / _M2_PER_A2)
