"""Pixel sizes in the forms the next tools read.

- :func:`serialem_pixel_lines`: a pixel-size table as SerialEM ``RotationAndPixel`` lines
  (camera properties): mag index, change of rotation from the next lower mag index (999
  when not measured), absolute rotation (999: a grating does not show the stage axes),
  pixel size (nm).
- MotionCor2's ``-Mag`` triple: :meth:`~napari_emcal.grating.PixelSizeResult.distortion`,
  or :func:`distortion_of_file` for a saved result.
"""

from __future__ import annotations

from ..errors import InvalidDataError, InvalidParameterError
from ..io.writers import write_serialem_lines
from .distortion import distortion_of_result
from .table import UNCONFIRMED, grid_rotation

__all__ = ["distortion_of_file", "serialem_pixel_lines", "write_serialem_pixel"]

#: SerialEM writes 999 for a rotation it does not know.
SERIALEM_UNKNOWN = 999


def serialem_pixel_lines(table, mag_index: dict | None = None) -> tuple[list[str], list[str]]:
    """``RotationAndPixel`` lines of a pixel-size table, and what was left out and why.

    Parameters
    ----------
    table : PixelSizeTable
        Rows with ``magnification`` and ``pixel_size_nm``; the lines hold the unbinned
        camera's pixel size (``pixel_size_nm`` / the camera's ``binning``). A row whose
        binning above 1 is unconfirmed is left out.
    mag_index : dict, optional
        SerialEM's mag index for each nominal magnification of the table; where it has
        none, the row's own ``mag_index`` (typed into the table).

    Returns
    -------
    lines, skipped : list of str
        The lines in order of mag index (for a camera's ``CameraProperties`` block), and a
        sentence per row not written.
    """
    mag_index = _checked_mag_indices(mag_index)
    frame = table.frame
    if frame.empty:
        raise InvalidDataError("The pixel-size table is empty: nothing to export.")
    rows, skipped = [], []
    for _, row in frame.iterrows():
        mag = row.get("magnification")
        index = (mag_index or {}).get(float(mag)) if mag == mag else None
        own = row.get("mag_index")
        if index is None and own is not None and own == own:
            index = int(own)
        if index is None:
            skipped.append(
                f"{row['image'] or 'a row'}: no SerialEM mag index for magnification {mag}"
            )
            continue
        if row["binning"] != 1 and row["binning_source"] == UNCONFIRMED:
            skipped.append(
                f"{row['image'] or 'a row'}: camera binning {row['binning']} unconfirmed "
                "(older tables kept the finder's working reduction there): type the "
                "camera's binning into the table"
            )
            continue
        rows.append((int(index), float(row["unbinned_pixel_size_nm"]), row))
    if not rows:
        raise InvalidParameterError(
            "No row of the table has a SerialEM mag index: type them into the table's "
            "'Mag index' column, or give one per magnification (e.g. --mag-index 29000=27)."
        )
    rows.sort(key=lambda r: r[0])
    lines, previous = [], None
    for index, pixel, row in rows:
        lines.append(
            f"RotationAndPixel {index} {_delta_rotation(previous, index, row):g} "
            f"{SERIALEM_UNKNOWN} {pixel:.5g}"
        )
        previous = (index, row)
    return lines, skipped


#: SerialEM numbers its magnifications from 1; no microscope has this many.
MAX_MAG_INDEX = 99


def _checked_mag_indices(mag_index) -> dict:
    """``{magnification: index}`` with plausible magnifications and whole indices from 1
    to :data:`MAX_MAG_INDEX`, or InvalidParameterError naming the entry."""
    from .._checks import plausible

    checked = {}
    for mag, index in (mag_index or {}).items():
        mag = plausible("magnification", mag, label="a --mag-index magnification")
        if isinstance(index, bool) or not (
            float(index) == int(index) and 1 <= int(index) <= MAX_MAG_INDEX
        ):
            raise InvalidParameterError(
                f"SerialEM mag index {index!r} for magnification {mag:g}: a whole number "
                f"from 1 to {MAX_MAG_INDEX} is needed"
            )
        checked[mag] = int(index)
    return checked


def _delta_rotation(previous, index: int, row) -> float:
    """SerialEM's change of rotation from the next lower mag index: the change of the grid
    angle, when the row below is that mag index and the change is not ambiguous; else 999."""
    if previous is None or previous[0] != index - 1:
        return SERIALEM_UNKNOWN
    change = float(row["angle_deg"]) - float(previous[1]["angle_deg"])
    if change != change:
        return SERIALEM_UNKNOWN
    wrapped, ambiguous = grid_rotation(change, row["mode"])
    return SERIALEM_UNKNOWN if ambiguous else round(float(wrapped), 3)


def write_serialem_pixel(table, path, mag_index: dict | None = None) -> str:
    """:func:`serialem_pixel_lines` written to ``path``; what was written, in words."""
    return write_serialem_lines(*serialem_pixel_lines(table, mag_index), path, "RotationAndPixel")


def distortion_of_file(path):
    """The anisotropic magnification of a pixel-size result saved as JSON (``emcal
    pixel-size IMAGE --json PATH``); ``None`` when it holds no lattice.

    Raises
    ------
    InvalidParameterError
        The file is not a pixel-size result.
    """
    from .._files import read_json

    document = read_json(path, what="pixel-size result")
    try:
        return distortion_of_result(document)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InvalidParameterError(
            f"{path} is not a pixel-size result (write one with emcal pixel-size "
            f"IMAGE --json PATH): {exc}"
        ) from None
