"""The specimens the pixel-size finder knows: their lattice periods by mode."""

from __future__ import annotations

import numpy as np

from ...errors import InvalidParameterError
from ...units import convert

__all__ = ["CATALASE_NM", "GRATING_LINES_PER_MM", "MODES", "known_spacings"]

#: Cross-line replica grating: 2160 lines per mm.
GRATING_LINES_PER_MM = 2160.0
#: Catalase crystal: the short-axis spacing and the long one (8.75 nm, whose peaks are weak
#: so the autocorrelation shows them at twice that), in nm.
CATALASE_NM = (6.85, 17.5)
MODES = ("grating", "catalase", "mesh", "lattice", "rectangular")


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
