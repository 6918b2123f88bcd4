"""Unit conversion between SI (the API) and the units microscopists type (widgets, files)."""

from __future__ import annotations

import math

from .errors import InvalidParameterError

#: Factors to SI for the length, time, angle and current units the project reads and shows.
_TO_SI = {
    # length -> m
    "m": 1.0,
    "mm": 1e-3,
    "um": 1e-6,
    "µm": 1e-6,
    "μm": 1e-6,
    "nm": 1e-9,
    "A": 1e-10,
    "Å": 1e-10,
    "pm": 1e-12,
    # time -> s
    "s": 1.0,
    "ms": 1e-3,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ns": 1e-9,
    # angle -> rad (angles in degrees are kept in degrees in the API, see to_degrees)
    "rad": 1.0,
    "mrad": 1e-3,
    "urad": 1e-6,
    "µrad": 1e-6,
    # current -> A
    "nA": 1e-9,
    "pA": 1e-12,
    "fA": 1e-15,
    # dimensionless
    "px": 1.0,
    "": 1.0,
}

_DIMENSION = {
    **{u: "length" for u in ("m", "mm", "um", "µm", "μm", "nm", "A", "Å", "pm")},
    **{u: "time" for u in ("s", "ms", "us", "µs", "μs", "ns")},
    **{u: "angle" for u in ("rad", "mrad", "urad", "µrad", "deg", "°")},
    **{u: "current" for u in ("nA", "pA", "fA")},
    "px": "pixel",
    "": "none",
}


def to_si(value: float, unit: str) -> float:
    """Convert ``value`` given in ``unit`` to SI (angles in radians).

    Raises
    ------
    InvalidParameterError
        If the unit is not known.
    """
    unit = unit.strip()
    if unit in ("deg", "°"):
        return math.radians(value)
    try:
        return value * _TO_SI[unit]
    except KeyError:
        raise InvalidParameterError(
            f"Unknown unit {unit!r}; use one of {', '.join(sorted(set(_TO_SI) | {'deg'}))}."
        ) from None


def from_si(value: float, unit: str) -> float:
    """Convert an SI ``value`` (angles in radians) to ``unit``."""
    unit = unit.strip()
    if unit in ("deg", "°"):
        return math.degrees(value)
    try:
        return value / _TO_SI[unit]
    except KeyError:
        raise InvalidParameterError(f"Unknown unit {unit!r}.") from None


def dimension(unit: str) -> str:
    """The physical dimension of ``unit``: 'length', 'time', 'angle', 'current', ..."""
    try:
        return _DIMENSION[unit.strip()]
    except KeyError:
        raise InvalidParameterError(f"Unknown unit {unit!r}.") from None
