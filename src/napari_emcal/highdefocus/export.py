"""High-defocus calibrations in the form SerialEM reads.

- :func:`serialem_high_defocus_lines`: a high-defocus table as SerialEM
  ``HighFocusMagCal`` lines (``SerialEMcalibrations.txt``): spot, probe (1 micro, 0 nano),
  defocus (µm), intensity, scale, rotation, crossover (0: unknown), aperture (0), mag
  index (0, as SerialEM's own calibration stores it). SerialEM's scale and rotation are
  those of the defocused image relative to focus, as here, but its rotation runs from
  camera +x towards camera +y (``ShiftManager.cpp`` ``MatScaleRotate`` applied in
  ``FocusAdjustedStageToCamera``), and SerialEM's camera y runs up its display, against
  the rows it holds in memory. In an MRC file SerialEM wrote the rows are reversed
  (camera y = +row): the same number as this project's rotation, from +x towards +y of
  the stored array. In a TIFF it wrote they are not (camera y = -row): the opposite
  number. A row whose images are neither, or of both kinds, is left out with the reason
  (docs/science.md, "SerialEM's camera axes").
"""

from __future__ import annotations

import pandas as pd

from ..errors import InvalidDataError
from ..io.writers import serialem_rows_along_camera_y, write_serialem_lines
from .table import MAGNIFICATION

__all__ = ["SERIALEM_PROBE", "serialem_high_defocus_lines", "write_serialem_high_defocus"]

#: SerialEM's probe modes: ``probeMode`` 1 for microprobe, 0 for nanoprobe.
SERIALEM_PROBE = {"micro": 1, "microprobe": 1, "nano": 0, "nanoprobe": 0}


def serialem_high_defocus_lines(table) -> tuple[list[str], list[str]]:
    """``HighFocusMagCal`` lines of a high-defocus table's magnification rows, and what
    was left out and why.

    A row needs its spot size, probe mode (micro or nano) and intensity: SerialEM looks
    calibrations up by them. The intensity must be SerialEM's own ``Intensity`` value (as
    its ``.mdoc`` files record it), not a C2 percentage. Its ``near_image`` and
    ``far_image`` must name the files SerialEM wrote, both MRC or both TIFF: the sign of
    the rotation in SerialEM's camera axes depends on it (see the module's docstring).
    """
    frame = table.frame
    if frame.empty:
        raise InvalidDataError("The high-defocus table is empty: nothing to export.")
    lines, skipped = [], []
    for number, (_, row) in enumerate(frame.iterrows(), start=1):
        if row.get("calibration", MAGNIFICATION) != MAGNIFICATION:
            # its HighFocusISCal line needs the series' mag index: emcal high-defocus-is
            # --serialem writes it
            skipped.append(
                f"row {number} ({row['defocus_um']:g} µm): an {row['calibration']} "
                "calibration, not a HighFocusMagCal (emcal high-defocus-is writes its "
                "HighFocusISCal line)"
            )
            continue
        probe = SERIALEM_PROBE.get(str(row.get("probe") or "").strip().lower())
        spot, intensity = row.get("spot"), row.get("intensity")
        missing = [
            name
            for name, ok in (
                ("spot size", pd.notna(spot)),
                ("probe mode (micro or nano)", probe is not None),
                ("intensity", pd.notna(intensity)),
            )
            if not ok
        ]
        if missing:
            skipped.append(f"row {number} ({row['defocus_um']:g} µm): no {', '.join(missing)}")
            continue
        along, why = _rows_along_camera_y(row.get("near_image"), row.get("far_image"))
        if along is None:
            skipped.append(f"row {number} ({row['defocus_um']:g} µm): {why}")
            continue
        rotation = float(row["rotation_deg"]) * (1.0 if along else -1.0)
        lines.append(
            f"HighFocusMagCal {int(spot)} {probe} {float(row['defocus_um']):f} "
            f"{float(intensity):f} {float(row['scale']):f} {rotation:f} "
            "0.000000 0 0"
        )
    if not lines:
        raise InvalidDataError(
            "No row of the table can be written for SerialEM (it needs spot size, probe "
            "mode and intensity, and images SerialEM wrote as MRC or TIFF): " + "; ".join(skipped)
        )
    return lines, skipped


def _rows_along_camera_y(near_image, far_image) -> tuple[bool | None, str]:
    """Whether both images' stored rows run along SerialEM's camera y, or why not known."""
    names = [str(n) if pd.notna(n) else "" for n in (near_image, far_image)]
    senses = [serialem_rows_along_camera_y(n) for n in names]
    if None in senses:
        unknown = [n or "(no name)" for n, s in zip(names, senses, strict=True) if s is None]
        return None, (
            f"image {' and '.join(unknown)} is not an MRC or TIFF file SerialEM wrote: the "
            "sense of its rows against SerialEM's camera y, hence the sign of the rotation, "
            "is not known"
        )
    if senses[0] != senses[1]:
        return None, (
            "one image is MRC and the other TIFF (rows in opposite senses): the measured "
            "rotation mixes two frames"
        )
    return senses[0], ""


def write_serialem_high_defocus(table, path) -> str:
    """:func:`serialem_high_defocus_lines` written to ``path``; what was written, in words."""
    return write_serialem_lines(*serialem_high_defocus_lines(table), path, "HighFocusMagCal")
