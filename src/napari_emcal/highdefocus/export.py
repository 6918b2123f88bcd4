"""High-defocus calibrations in the form SerialEM reads.

- :func:`serialem_high_defocus_lines`: a high-defocus table as SerialEM
  ``HighFocusMagCal`` lines (``SerialEMcalibrations.txt``): spot, probe (1 micro, 0 nano),
  defocus (µm), intensity, scale, rotation, crossover (0: unknown), aperture (0), mag
  index (0, as SerialEM's own calibration stores it). SerialEM's scale and rotation are
  those of the defocused image relative to focus, as here; its angles run from +x towards
  +y of the stored array (counter-clockwise as it displays an image with the first row at
  the bottom), the same numbers as this project's for the same array.
"""

from __future__ import annotations

import pandas as pd

from ..errors import InvalidDataError
from ..io.writers import write_serialem_lines

__all__ = ["SERIALEM_PROBE", "serialem_high_defocus_lines", "write_serialem_high_defocus"]

#: SerialEM's probe modes: ``probeMode`` 1 for microprobe, 0 for nanoprobe.
SERIALEM_PROBE = {"micro": 1, "microprobe": 1, "nano": 0, "nanoprobe": 0}


def serialem_high_defocus_lines(table) -> tuple[list[str], list[str]]:
    """``HighFocusMagCal`` lines of a high-defocus table, and what was left out and why.

    A row needs its spot size, probe mode (micro or nano) and intensity: SerialEM looks
    calibrations up by them. The intensity must be SerialEM's own ``Intensity`` value (as
    its ``.mdoc`` files record it), not a C2 percentage.
    """
    frame = table.frame
    if frame.empty:
        raise InvalidDataError("The high-defocus table is empty: nothing to export.")
    lines, skipped = [], []
    for number, (_, row) in enumerate(frame.iterrows(), start=1):
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
        lines.append(
            f"HighFocusMagCal {int(spot)} {probe} {float(row['defocus_um']):f} "
            f"{float(intensity):f} {float(row['scale']):f} {float(row['rotation_deg']):f} "
            "0.000000 0 0"
        )
    if not lines:
        raise InvalidDataError(
            "No row of the table has spot size, probe mode and intensity, which SerialEM "
            "looks its calibrations up by: " + "; ".join(skipped)
        )
    return lines, skipped


def write_serialem_high_defocus(table, path) -> str:
    """:func:`serialem_high_defocus_lines` written to ``path``; what was written, in words."""
    return write_serialem_lines(*serialem_high_defocus_lines(table), path, "HighFocusMagCal")
