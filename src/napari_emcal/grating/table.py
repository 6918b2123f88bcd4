"""A session's pixel-size calibrations, one row per magnification (pandas).

Pure computation: the widget shows it, the tests and scripts use it directly.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import InvalidDataError, InvalidParameterError
from ..tables import Column, Table
from .find import PixelSizeResult

__all__ = ["PixelSizeTable", "grid_rotation"]

#: Columns a user supplies (or a result fills); the rest are derived.
SCHEMA = (
    Column("image", "text"),
    Column("magnification", positive=True),
    Column("pixel_size_nm", label="pixel size", required=True, positive=True),
    Column("angle_deg", label="angle"),
    Column("mode", "text", default="grating"),
    Column("quality"),
    Column("binning", "integer", positive=True, default=1),
    # SerialEM's index of this magnification, for its RotationAndPixel lines
    Column("mag_index", label="SerialEM mag index", positive=True),
)
COLUMNS = tuple(c.name for c in SCHEMA)
DERIVED = ("relative_rotation_deg", "rotation_ambiguous", "product_nm", "product_outlier")
#: Relative rotations this close to ±45° (square lattice) or ±90° (catalase) are ambiguous.
AMBIGUITY_MARGIN_DEG = 10.0


def grid_rotation(change_deg, mode):
    """A change of grid angle (degrees) as far as the lattice tells it: in (-p/2, p/2] for
    its period p (90° for square lattices, 180° for catalase), and whether it lies so near
    ±p/2 that the true change may be a period off. Works element-wise on arrays."""
    period = np.where(np.asarray(mode) == "catalase", 180.0, 90.0)
    change = np.asarray(change_deg, float)
    wrapped = -((-change + period / 2) % period - period / 2)
    return wrapped, np.abs(wrapped) > period / 2 - AMBIGUITY_MARGIN_DEG


class PixelSizeTable(Table):
    """Pixel sizes measured at several magnifications, with consistency checks.

    Derived columns (in order of magnification):

    ``relative_rotation_deg``
        Grid angle change from the previous (lower) magnification. A square lattice looks
        the same after 90°, so this is only known modulo 90° (180° for catalase) and
        reported in (-45°, 45°]; ``rotation_ambiguous`` flags values within
        ``AMBIGUITY_MARGIN_DEG`` of the ends, where the true rotation may be 90° off.
    ``product_nm``
        Pixel size x nominal magnification: the camera's physical pixel size (nm), nearly
        the same for every magnification of one camera and projector setting.
    ``product_outlier``
        True where the product differs from the median by more than ``tolerance``
        (a wrong magnification entry, or a mis-measured row).

    Parameters
    ----------
    tolerance : float
        Relative deviation of ``product_nm`` from the median that counts as an outlier.
    """

    COLUMNS = SCHEMA
    DERIVED = DERIVED
    SORT_BY = ("magnification",)
    NAME = "pixel-size table"

    def __init__(self, tolerance: float = 0.05):
        if not tolerance > 0:
            raise InvalidParameterError(f"tolerance must be positive; got {tolerance}")
        super().__init__()
        self.tolerance = float(tolerance)

    def add(
        self, result: PixelSizeResult, *, magnification: float | None = None, image: str = ""
    ) -> int:
        """Add a measurement; returns its row index (rows stay in order of magnification).

        Raises
        ------
        InvalidDataError
            The result has no lattice (nothing to add).
        """
        if not result.found:
            raise InvalidDataError(f"nothing to add: {result.message}")
        return self.add_row(
            image=image,
            magnification=magnification,
            pixel_size_nm=result.pixel_size_nm,
            angle_deg=result.angle_deg,
            mode=result.mode,
            quality=result.quality,
            binning=result.binning,
        )

    def set_magnification(self, index: int, magnification: float | None) -> None:
        """Enter or correct the nominal magnification of a row (the rows are re-sorted)."""
        self.update(index, magnification=magnification)

    @property
    def frame(self) -> pd.DataFrame:
        """All rows with the derived columns, in order of magnification (unknown last)."""
        rows = self._rows.copy()
        rows["relative_rotation_deg"] = np.nan
        rows["rotation_ambiguous"] = False
        known = rows.index[rows["magnification"].notna() & rows["angle_deg"].notna()]
        if len(known) > 1:
            # each row against the previous one with a known angle, all at once
            change = np.diff(rows.loc[known, "angle_deg"].to_numpy())
            wrapped, ambiguous = grid_rotation(change, rows.loc[known, "mode"].to_numpy()[1:])
            rows.loc[known[1:], "relative_rotation_deg"] = wrapped
            rows.loc[known[1:], "rotation_ambiguous"] = ambiguous
        rows["product_nm"] = rows["pixel_size_nm"] * rows["magnification"]
        median = rows["product_nm"].median()
        deviation = (rows["product_nm"] / median - 1).abs()
        rows["product_outlier"] = (deviation > self.tolerance).fillna(False).astype(bool)
        return rows
