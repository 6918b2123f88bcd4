"""A session's pixel-size calibrations, one row per magnification (pandas).

Pure computation: the widget shows it, the tests and scripts use it directly.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InvalidDataError, InvalidParameterError
from .find import PixelSizeResult

__all__ = ["PixelSizeTable"]

#: Columns a user supplies (or a result fills); the rest are derived.
COLUMNS = ("image", "magnification", "pixel_size_nm", "angle_deg", "mode", "quality", "binning")
DERIVED = ("relative_rotation_deg", "rotation_ambiguous", "product_nm", "product_outlier")
#: Relative rotations this close to ±45° (square lattice) or ±90° (catalase) are ambiguous.
AMBIGUITY_MARGIN_DEG = 10.0


class PixelSizeTable:
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

    def __init__(self, tolerance: float = 0.05):
        if not tolerance > 0:
            raise InvalidParameterError(f"tolerance must be positive; got {tolerance}")
        self.tolerance = float(tolerance)
        self._rows = pd.DataFrame({name: pd.Series(dtype=_dtype(name)) for name in COLUMNS})

    def __len__(self) -> int:
        return len(self._rows)

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

    def add_row(
        self,
        *,
        pixel_size_nm: float,
        angle_deg: float = float("nan"),
        magnification: float | None = None,
        image: str = "",
        mode: str = "grating",
        quality: float = float("nan"),
        binning: int = 1,
    ) -> int:
        """Add a row by value (e.g. a pixel size measured elsewhere); returns its index."""
        if not (np.isfinite(pixel_size_nm) and pixel_size_nm > 0):
            raise InvalidParameterError(f"pixel size must be positive; got {pixel_size_nm}")
        if magnification is not None and not (np.isfinite(magnification) and magnification > 0):
            raise InvalidParameterError(f"magnification must be positive; got {magnification}")
        row = {
            "image": str(image),
            "pixel_size_nm": float(pixel_size_nm),
            "magnification": float("nan") if magnification is None else float(magnification),
            "angle_deg": float(angle_deg),
            "mode": str(mode),
            "quality": float(quality),
            "binning": int(binning),
        }
        self._rows.loc[len(self._rows)] = row
        return self._sort(new=len(self._rows) - 1)

    def _sort(self, new: int | None = None) -> int | None:
        """Keep rows in order of magnification (unknown last); the new row's position."""
        order = self._rows["magnification"].to_numpy()
        positions = np.argsort(np.where(np.isnan(order), np.inf, order), kind="stable")
        self._rows = self._rows.iloc[positions].reset_index(drop=True)
        return None if new is None else int(np.flatnonzero(positions == new)[0])

    def set_magnification(self, index: int, magnification: float | None) -> None:
        """Enter or correct the nominal magnification of a row (the rows are re-sorted)."""
        if magnification is not None and not (np.isfinite(magnification) and magnification > 0):
            raise InvalidParameterError(f"magnification must be positive; got {magnification}")
        self._rows.loc[index, "magnification"] = (
            float("nan") if magnification is None else float(magnification)
        )
        self._sort()

    def remove(self, index: int) -> None:
        """Delete a row."""
        self._rows = self._rows.drop(index).reset_index(drop=True)

    @property
    def frame(self) -> pd.DataFrame:
        """All rows with the derived columns, in order of magnification (unknown last)."""
        rows = self._rows.copy()
        rows["relative_rotation_deg"] = np.nan
        rows["rotation_ambiguous"] = False
        known = rows.index[rows["magnification"].notna() & rows["angle_deg"].notna()]
        for previous, current in zip(known[:-1], known[1:]):
            period = 180.0 if rows.at[current, "mode"] == "catalase" else 90.0
            change = rows.at[current, "angle_deg"] - rows.at[previous, "angle_deg"]
            wrapped = -((-change + period / 2) % period - period / 2)  # in (-p/2, p/2]
            rows.at[current, "relative_rotation_deg"] = wrapped
            rows.at[current, "rotation_ambiguous"] = (
                abs(wrapped) > period / 2 - AMBIGUITY_MARGIN_DEG
            )
        rows["product_nm"] = rows["pixel_size_nm"] * rows["magnification"]
        median = rows["product_nm"].median()
        deviation = (rows["product_nm"] / median - 1).abs()
        rows["product_outlier"] = (deviation > self.tolerance).fillna(False).astype(bool)
        return rows

    # -- CSV ------------------------------------------------------------------------------
    def to_csv(self, path) -> None:
        """Write all columns (derived ones too, for a spreadsheet); read back by from_csv."""
        self.frame.to_csv(Path(path), index=False)

    @classmethod
    def from_csv(cls, path, tolerance: float = 0.05) -> PixelSizeTable:
        """Read a table written by :meth:`to_csv` (derived columns are recomputed).

        Raises
        ------
        InvalidDataError
            The file cannot be read, lacks ``pixel_size_nm``, or has columns this table
            does not know (named in the message).
        """
        try:
            data = pd.read_csv(Path(path))
        except (OSError, ValueError) as exc:
            raise InvalidDataError(f"cannot read {path} as CSV: {exc}") from exc
        unknown = [c for c in data.columns if c not in COLUMNS + DERIVED]
        if unknown:
            raise InvalidDataError(
                f"{path}: unknown column(s) {', '.join(unknown)}; expected {', '.join(COLUMNS)}"
            )
        if "pixel_size_nm" not in data.columns:
            raise InvalidDataError(f"{path}: missing column pixel_size_nm")
        table = cls(tolerance)
        for record in data.to_dict("records"):
            values = {k: record[k] for k in COLUMNS if k in record and not _missing(record[k])}
            if "magnification" in values:
                values["magnification"] = float(values["magnification"])
            table.add_row(**values)
        return table


def _dtype(name: str):
    return {"image": object, "mode": object, "binning": "int64"}.get(name, "float64")


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
