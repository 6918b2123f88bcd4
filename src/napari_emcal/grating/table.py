"""A session's pixel-size calibrations, one row per magnification (pandas).

Pure computation: the widget shows it, the tests and scripts use it directly.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import InvalidDataError
from ..tables import Column, MedianCheckedTable
from .find import PixelSizeResult

__all__ = ["PixelSizeTable", "camera_binning", "grid_rotation"]

#: Columns a user supplies (or a result fills); the rest are derived.
SCHEMA = (
    Column("image", "text"),
    Column("magnification", positive=True),
    Column("pixel_size_nm", label="pixel size", required=True, positive=True),
    Column("angle_deg", label="angle"),
    Column("mode", "text", default="grating"),
    Column("quality"),
    # The camera's binning when the image was recorded (not the finder's working reduction,
    # PixelSizeResult.binning): a binned image's pixel is ``binning`` camera pixels wide.
    Column("binning", "integer", positive=True, default=1),
    # where ``binning`` came from: the image's metadata (its key), "typed", or a note
    Column("binning_source", "text"),
    # SerialEM's index of this magnification, for its RotationAndPixel lines
    Column("mag_index", label="SerialEM mag index", positive=True),
)
COLUMNS = tuple(c.name for c in SCHEMA)
DERIVED = (
    "unbinned_pixel_size_nm",
    "relative_rotation_deg",
    "rotation_ambiguous",
    "product_nm",
    "product_outlier",
)
#: ``binning_source`` of a binning of 1 nobody recorded or typed.
NOT_RECORDED = "not recorded: 1 assumed"
#: ``binning_source`` of a binning above 1 of unknown origin (a table written before the
#: camera's binning was kept apart from the finder's working reduction, or typed into a
#: CSV without its source): exports leave such rows out until it is confirmed.
UNCONFIRMED = "unconfirmed"
#: Keys of the camera's binning in image metadata (TVIPS BinningX, DigitalMicrograph
#: Binning, SerialEM Binning...), normalised as ``io.images.find_number`` does.
BINNING_KEYS = ("binningx", "binning", "camerabinning", "hardwarebinning")
#: Camera binnings that exist (larger values in metadata are encodings, e.g. TVIPS's 40000).
MAX_CAMERA_BINNING = 32
#: Relative rotations this close to ±45° (square lattice) or ±90° (catalase) are ambiguous.
AMBIGUITY_MARGIN_DEG = 10.0


def camera_binning(metadata) -> tuple[int, str] | None:
    """The camera's binning recorded in an image's metadata (as :func:`open_image` or a
    napari layer holds it), and where: ``(binning, "metadata: <key>")``, or None.

    Only whole numbers from 1 to :data:`MAX_CAMERA_BINNING` count (a list such as
    DigitalMicrograph's ``[2, 2]`` gives its first value).
    """

    def plausible(value):
        if isinstance(value, (list, tuple)) and value:
            value = value[0]
        if isinstance(value, dict) and "value" in value:  # Velox-style wrapper
            value = value["value"]
        if isinstance(value, bool):
            return None
        try:
            number = float(value)
        except (TypeError, ValueError):
            return None
        if np.isfinite(number) and number == int(number) and 1 <= number <= MAX_CAMERA_BINNING:
            return int(number)
        return None

    level = [metadata]
    while level:  # breadth first: the shallowest entry wins, then the earlier key
        best, deeper = None, []
        for node in level:
            if isinstance(node, list):
                deeper.extend(v for v in node if isinstance(v, (dict, list)))
                continue
            if not isinstance(node, dict):
                continue
            for key, value in node.items():
                name = str(key).lower().replace(" ", "").replace("_", "").replace(".", "")
                if name in BINNING_KEYS:
                    found = plausible(value)
                    rank = BINNING_KEYS.index(name)
                    if found is not None and (best is None or rank < best[0]):
                        best = (rank, found, str(key))
                elif isinstance(value, (dict, list)):
                    deeper.append(value)
        if best is not None:
            return best[1], f"metadata: {best[2]}"
        level = deeper
    return None


def grid_rotation(change_deg, mode):
    """A change of grid angle (degrees) as far as the lattice tells it: in (-p/2, p/2] for
    its period p (90° for square lattices, 180° for catalase), and whether it lies so near
    ±p/2 that the true change may be a period off. Works element-wise on arrays."""
    period = np.where(np.asarray(mode) == "catalase", 180.0, 90.0)
    change = np.asarray(change_deg, float)
    wrapped = -((-change + period / 2) % period - period / 2)
    return wrapped, np.abs(wrapped) > period / 2 - AMBIGUITY_MARGIN_DEG


class PixelSizeTable(MedianCheckedTable):
    """Pixel sizes measured at several magnifications, with consistency checks.

    Derived columns (in order of magnification):

    ``relative_rotation_deg``
        Grid angle change from the previous (lower) magnification. A square lattice looks
        the same after 90°, so this is only known modulo 90° (180° for catalase) and
        reported in (-45°, 45°]; ``rotation_ambiguous`` flags values within
        ``AMBIGUITY_MARGIN_DEG`` of the ends, where the true rotation may be 90° off.
    ``unbinned_pixel_size_nm``
        ``pixel_size_nm`` / ``binning``: the pixel size of the unbinned camera, which
        SerialEM's ``RotationAndPixel`` lines hold.
    ``product_nm``
        Unbinned pixel size x nominal magnification: the camera's physical pixel size
        (nm), nearly the same for every magnification of one camera and projector setting.
    ``product_outlier``
        True where the product differs from the median by more than ``tolerance``
        (a wrong magnification entry, or a mis-measured row).

    ``binning`` is the camera's binning when the image was recorded, with its source in
    ``binning_source``; the finder's working reduction (:attr:`PixelSizeResult.binning`)
    never enters the table, since the result's pixel size is already per image pixel.

    Parameters
    ----------
    tolerance : float, optional
        Relative deviation of ``product_nm`` from the median that counts as an outlier
        (default :attr:`TOLERANCE`).
    """

    COLUMNS = SCHEMA
    DERIVED = DERIVED
    SORT_BY = ("magnification",)
    NAME = "pixel-size table"
    TOLERANCE = 0.05

    def add(
        self,
        result: PixelSizeResult,
        *,
        magnification: float | None = None,
        image: str = "",
        binning: int | None = None,
        metadata: dict | None = None,
    ) -> int:
        """Add a measurement; returns its row index (rows stay in order of magnification).

        Parameters
        ----------
        result : PixelSizeResult
            A found lattice; its pixel size is per pixel of the image it was found in.
        magnification : float, optional
            Nominal magnification of the image.
        image : str
            The image's name.
        binning : int, optional
            The camera's binning of the image, as typed by the user (source "typed").
        metadata : dict, optional
            The image's metadata (``open_image``'s, or a layer's): the camera's binning is
            read from it when ``binning`` is not given; else 1 is assumed, and said so.

        Raises
        ------
        InvalidDataError
            The result has no lattice (nothing to add).
        """
        if not result.found:
            raise InvalidDataError(f"nothing to add: {result.message}")
        if binning is not None:
            source = "typed"
        else:
            recorded = camera_binning(metadata) if metadata else None
            binning, source = recorded if recorded else (1, NOT_RECORDED)
        return self.add_row(
            image=image,
            magnification=magnification,
            pixel_size_nm=result.pixel_size_nm,
            angle_deg=result.angle_deg,
            mode=result.mode,
            quality=result.quality,
            binning=binning,
            binning_source=source,
        )

    def add_row(self, **values) -> int:
        """As :meth:`Table.add_row`; a binning given without its source counts as typed."""
        return super().add_row(**_typed_binning(values))

    def update(self, index: int, **values) -> int:
        """As :meth:`Table.update`; a corrected binning without its source counts as typed."""
        return super().update(index, **_typed_binning(values))

    def prepare(self, data, *, where=None, first=1):
        """As :meth:`Table.prepare`, with an empty ``binning_source`` filled in: a binning
        of 1 is noted as assumed, a larger one as :data:`UNCONFIRMED`."""
        rows = super().prepare(data, where=where, first=first)
        blank = rows["binning_source"].astype(str).str.strip() == ""
        if blank.any():
            filled = np.where(rows["binning"] == 1, NOT_RECORDED, UNCONFIRMED)
            rows["binning_source"] = rows["binning_source"].where(
                ~blank, pd.Series(filled, index=rows.index)
            )
        return rows

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
        rows.insert(
            rows.columns.get_loc("pixel_size_nm") + 1,
            "unbinned_pixel_size_nm",
            rows["pixel_size_nm"] / rows["binning"],
        )
        rows["product_nm"] = rows["unbinned_pixel_size_nm"] * rows["magnification"]
        rows["product_outlier"] = self.median_outliers(rows["product_nm"])
        return rows


def _typed_binning(values: dict) -> dict:
    if "binning" in values and not str(values.get("binning_source") or "").strip():
        return {**values, "binning_source": "typed"}
    return values
