"""The dose table's columns and the checks a row passes before it joins the table.

What a row holds (``INPUT``, in the units microscopists read off the microscope), what the
table computes (``DERIVED``), and how entered times are kept and compared.
"""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
import pandas as pd

from ..errors import InvalidParameterError
from ..tables import Column, missing

#: What a row holds, in the units microscopists read off the microscope.
INPUT = (
    "image",
    "time",
    "mode",
    "voltage_kv",
    "spot",
    "aperture_um",
    "probe",
    "magnification",
    "pixel_size_nm",
    "shape_y",
    "shape_x",
    "exposure_s",
    "dwell_us",
    "flyback_us",
    "frame_time_s",
    "current_pa",
    "illuminated_diameter_um",
    "counts_per_pixel_per_s",
    "counts_per_electron",
    "recorded_dose_e_A2",
    "prior_dose_e_A2",
    "series",
    "record",
    "z_value",
    "tilt_angle_deg",
    "frame_first",
    "frame_end",
    "note",
    "source",
)
#: Columns a table written before tilt series were read may lack (no warning for them).
OPTIONAL = ("series", "record", "z_value", "tilt_angle_deg", "frame_first", "frame_end", "note")
#: What a row is: a plain image, a tilt of a tilt series, a frame set (a continuous
#: exposure, tilts may be cut from it), a piece of a montage, a whole montage (SerialEM's
#: MontSection: its pieces carry the doses), or a repeat of a section already in the
#: table (flagged, its dose not counted again).
RECORDS = ("image", "tilt", "frame set", "montage piece", "montage", "repeat")
#: What the table computes (flux e⁻/Å²/s, doses e⁻/Å²).
DERIVED = (
    "elapsed_s",
    "current_used_pa",
    "current_from",
    "flux_e_A2_s",
    "dose_e_A2",
    "dose_from",
    "dose_estimate_e_A2",
    "probe_dose_e_A2",
    "acquisition_order",
    "cumulative_e_A2",
    "cumulative_from",
    "cumulative_lower_bound",
    "relation",
    "over_budget",
    "problems",
)
_TEXT = ("image", "time", "mode", "probe", "series", "record", "note", "source")
#: A recorded prior dose agrees with the sum of the earlier images' doses within this
#: fraction of it or this many e⁻/Å², whichever is larger (SerialEM writes six significant
#: digits, so its own sums agree to 1e-5).
PRIOR_TOLERANCE = 0.01
PRIOR_TOLERANCE_E_A2 = 0.01
#: Physically invalid numbers (a negative current...) are kept and reported in the row's
#: ``problems``, so no column is declared positive here.
SCHEMA = tuple(
    Column(name, "text" if name in _TEXT else "number", required=name == "image") for name in INPUT
)
#: The derived columns computed image by image (the rest come from the whole series).
PER_IMAGE = DERIVED[1:8]
#: Cumulative dose modes: the sum of the images' own doses, or flux x time between images.
ACCUMULATION = ("exposure", "wall_clock")
MODES = ("TEM", "STEM")


def check_values(values: dict) -> None:
    """Numbers where numbers belong (see :meth:`DoseTable.add`): raises
    InvalidParameterError for a value that is not a finite number."""
    for column in SCHEMA:
        value = values.get(column.name)
        if column.kind == "text" or missing(value):
            continue
        if isinstance(value, (bool, np.bool_)) or np.ndim(value) != 0:
            raise InvalidParameterError(f"{column.called} must be a number; got {value!r}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise InvalidParameterError(
                f"{column.called} must be a number; got {value!r}"
            ) from None
        if not math.isfinite(number):
            raise InvalidParameterError(f"{column.called} must be finite; got {value!r}")


def _time_text(value):
    """Times entered as datetimes are kept as ISO 8601 text."""
    if isinstance(value, (datetime, pd.Timestamp)) and not pd.isna(value):
        return pd.Timestamp(value).isoformat()
    return value


#: An ISO 8601 UTC offset ends the text: +02:00, -0500 or Z.
_AWARE = r"(?:[+-]\d{2}:?\d{2}|Z)$"


def _parse_times(texts: pd.Series, utc_offset: str | None = None) -> pd.Series:
    """Times to compare, as naive UTC: those with a UTC offset converted, those without
    read as the instrument's local time: shifted by ``utc_offset`` when it is known, else
    compared as written (said once per file by :meth:`DoseTable.notes`). Never raises on a
    mix of both."""
    values = texts.where(texts.astype(bool), None)
    parsed = pd.to_datetime(values, errors="coerce", format="ISO8601", utc=True)
    parsed = parsed.dt.tz_localize(None)
    if utc_offset is not None:
        naive = ~texts.fillna("").astype(str).str.contains(_AWARE, regex=True)
        sign = -1 if utc_offset.startswith("-") else 1
        hours, minutes = (int(x) for x in utc_offset[1:].split(":"))
        shift = pd.Timedelta(hours=sign * hours, minutes=sign * minutes)
        parsed = parsed.where(~naive, parsed - shift)
    return parsed
