"""Doses in the forms the next tools read.

- :func:`dose_columns`, :func:`write_dose_text`: per image, in acquisition order, the dose
  before it and its own dose (e⁻/Å²), the two numbers dose-weighting programs take.
- :func:`write_mdoc_doses`: a SerialEM ``.mdoc`` with ``ExposureDose`` (the image's dose)
  and ``PriorRecordDose`` (the dose of the earlier images) set from the dose table, the keys
  SerialEM writes when it has its own dose calibration; everything else is copied as is.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .._files import atomic_write_text
from ..errors import InvalidDataError

__all__ = ["dose_columns", "write_dose_text", "write_mdoc_doses"]


def dose_columns(table):
    """``(images, prior, dose)`` in acquisition order (by time, then entry order): each
    image's name, the dose of all earlier images and its own dose, e⁻/Å².

    Raises
    ------
    InvalidDataError
        When an image's dose is unknown (its prior dose would be wrong for every later
        image): complete the table first.
    """
    frame = table.frame
    if frame.empty:
        raise InvalidDataError("The dose table is empty: nothing to export.")
    dose = frame["dose_e_A2"].to_numpy(float)
    missing = np.flatnonzero(~np.isfinite(dose))
    if missing.size:
        names = ", ".join(str(frame["image"].iloc[i]) for i in missing[:3])
        raise InvalidDataError(
            f"{missing.size} image(s) have no dose ({names}…): every later image's prior dose "
            "would be wrong. Complete the current calibration or the conditions first."
        )
    prior = np.concatenate([[0.0], np.cumsum(dose)[:-1]])
    return list(frame["image"].astype(str)), prior, dose


def write_dose_text(table, path) -> Path:
    """One line per image in acquisition order: prior dose and dose (e⁻/Å²)."""
    images, prior, dose = dose_columns(table)
    lines = [
        "# napari-emcal dose per image, acquisition order; e-/A^2",
        "# prior_dose dose  (image)",
    ]
    lines += [f"{p:.4f} {d:.4f}  # {name}" for name, p, d in zip(images, prior, dose)]
    atomic_write_text(path, "\n".join(lines) + "\n")
    return Path(path)


_SECTION = re.compile(r"^\[\s*ZValue\s*=\s*(\d+)\s*\]")
_DOSE_KEY = re.compile(r"^\s*(ExposureDose|PriorRecordDose)\s*=")


def write_mdoc_doses(mdoc, table, path) -> tuple[Path, int]:
    """Copy ``mdoc`` to ``path`` with each section's ``ExposureDose`` and
    ``PriorRecordDose`` from the dose table; returns the path and the sections set.

    The table's rows for this file are named ``<stem> [<ZValue>]`` (as
    :func:`~napari_emcal.dose.metadata.rows_from_file` names them); a section without a
    row keeps its lines.
    """
    mdoc = Path(mdoc)
    try:
        text = mdoc.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InvalidDataError(f"cannot read {mdoc}: {exc.strerror}") from exc
    images, prior, dose = dose_columns(table)
    by_name = {name: (p, d) for name, p, d in zip(images, prior, dose)}
    out, current, done = [], None, 0
    for line in text.splitlines():
        match = _SECTION.match(line)
        if match:
            current = by_name.get(f"{mdoc.stem} [{int(match.group(1))}]")
            out.append(line)
            if current is not None:
                out.append(f"ExposureDose = {current[1]:.4f}")
                out.append(f"PriorRecordDose = {current[0]:.4f}")
                done += 1
            continue
        if current is not None and _DOSE_KEY.match(line):
            continue  # replaced above
        out.append(line)
    if done == 0:
        raise InvalidDataError(
            f"no section of {mdoc.name} matches an image of the dose table (rows named "
            f"'{mdoc.stem} [Z]'): add the .mdoc to the table first"
        )
    atomic_write_text(path, "\n".join(out) + "\n")
    return Path(path), done
