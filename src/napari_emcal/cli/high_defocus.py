"""What the CLI's assembly hands the SerialEM tool: a high-defocus image-shift result goes
into the high-defocus tool's table file (a tool does not import another)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["add_image_shift_row"]


def add_image_shift_row(path, row: dict) -> str:
    """Add ``row`` (:meth:`napari_emcal.serialem.shifts.HighDefocusIS.table_row`) to the
    high-defocus table at ``path`` (made if absent) as an ``image shift`` calibration, beside
    its magnification calibrations; written atomically. What was done, in words.

    Raises
    ------
    InvalidDataError
        The file is not a high-defocus table.
    InvalidParameterError
        A value the table refuses.
    """
    from ..highdefocus import HighDefocusTable
    from ..highdefocus.table import IMAGE_SHIFT

    path = Path(path)
    table = HighDefocusTable.from_csv(path) if path.exists() else HighDefocusTable()
    added = table.add(**row, calibration=IMAGE_SHIFT)
    table.to_csv(path)
    return f"{path}: image-shift calibration at {row['defocus_um']:g} µm {added.message}"
