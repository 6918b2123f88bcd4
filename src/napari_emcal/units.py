"""Every conversion between what a person types or a file records (µm, mm, nm, pA, kV,
mrad, ...) and the API's SI units (metres, seconds, amperes, volts, electronvolts, radians;
angles in degrees stay in degrees).

Widgets, the command line, readers and tables convert through this module only: a factor
written by hand elsewhere is a bug waiting for a unit to change.
"""

from __future__ import annotations

import math

from .errors import InvalidParameterError

__all__ = ["convert", "dimension", "format_si", "from_si", "to_si", "unit_of"]

#: Factors to SI, by dimension.
_UNITS = {
    "length": {
        "m": 1.0,
        "mm": 1e-3,
        "um": 1e-6,
        "µm": 1e-6,
        "μm": 1e-6,
        "nm": 1e-9,
        "A": 1e-10,
        "Å": 1e-10,
        "pm": 1e-12,
    },
    "time": {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ns": 1e-9},
    # angles in radians; "deg" is handled apart (degrees are the API's unit for rotations)
    "angle": {"rad": 1.0, "mrad": 1e-3, "urad": 1e-6, "µrad": 1e-6},
    # amperes: "A" means ångström above, so the ampere itself is spelled "amp"
    "current": {
        "amp": 1.0,
        "mA": 1e-3,
        "uA": 1e-6,
        "µA": 1e-6,
        "nA": 1e-9,
        "pA": 1e-12,
        "fA": 1e-15,
    },
    "voltage": {"V": 1.0, "kV": 1e3, "MV": 1e6},
    "energy": {"eV": 1.0, "keV": 1e3, "MeV": 1e6},
    "pixel": {"px": 1.0},
    "none": {"": 1.0},
}
_TO_SI = {unit: factor for table in _UNITS.values() for unit, factor in table.items()}
_DIMENSION = {unit: name for name, table in _UNITS.items() for unit in table}
_DEGREES = ("deg", "°")
_DIMENSION.update(dict.fromkeys(_DEGREES, "angle"))


def _factor(unit: str) -> float:
    try:
        return _TO_SI[unit.strip()]
    except (KeyError, AttributeError):
        known = ", ".join(sorted(set(_TO_SI) | {"deg"}))
        raise InvalidParameterError(f"Unknown unit {unit!r}; use one of {known}.") from None


def to_si(value: float, unit: str) -> float:
    """Convert ``value`` given in ``unit`` to SI (angles to radians).

    Raises
    ------
    InvalidParameterError
        If the unit is not known.
    """
    if str(unit).strip() in _DEGREES:
        return math.radians(value)
    return value * _factor(unit)


def from_si(value: float, unit: str) -> float:
    """Convert an SI ``value`` (angles in radians) to ``unit``."""
    if str(unit).strip() in _DEGREES:
        return math.degrees(value)
    return value / _factor(unit)


def convert(value: float, from_unit: str, to_unit: str) -> float:
    """``value`` in ``from_unit`` expressed in ``to_unit`` (the same dimension).

    >>> convert(150, "mm", "m")
    0.15
    """
    if dimension(from_unit) != dimension(to_unit):
        raise InvalidParameterError(
            f"cannot convert {from_unit!r} ({dimension(from_unit)}) to {to_unit!r} "
            f"({dimension(to_unit)})"
        )
    return from_si(to_si(value, from_unit), to_unit)


def dimension(unit: str) -> str:
    """The physical dimension of ``unit``: 'length', 'time', 'angle', 'current', ..."""
    try:
        return _DIMENSION[str(unit).strip()]
    except KeyError:
        raise InvalidParameterError(f"Unknown unit {unit!r}.") from None


def unit_of(text: str) -> str | None:
    """The unit a file writes (``"µm"``, ``"um"``, ``"n_m"``, ``"nm "``...) as this module
    spells it, or None when it is not a known unit."""
    cleaned = str(text).strip().replace("_", "")
    aliases = {"micron": "µm", "microns": "µm", "angstrom": "Å", "ang": "Å"}
    cleaned = aliases.get(cleaned.lower(), cleaned)
    return cleaned if cleaned in _DIMENSION else None


def format_si(value: float | None, unit: str, digits: int = 4) -> str:
    """An SI ``value`` written in ``unit`` with ``digits`` decimals (``"—"`` for None)."""
    if value is None:
        return "—"
    return f"{from_si(value, unit):.{digits}f} {unit}".rstrip()
