"""The dose table to and from files: the Excel workbook (images, current calibration,
settings) and the JSON session the autosave writes. The methods of
:class:`~napari_emcal.dose.table.DoseTable` call these with the table (``table``) or its
class (``cls``); this module does not import it, so that the two form no import circle."""

from __future__ import annotations

import json
import warnings
from datetime import datetime
from pathlib import Path

import pandas as pd

from ..errors import EmcalError, IncompleteDataWarning, InvalidDataError
from ..tables import missing
from .calibration import CurrentCalibration
from .columns import _TEXT


def write_excel(table, path) -> None:
    """An Excel workbook: sheet "images" (all columns) and "current calibration"."""
    from .._files import write_workbook

    settings = pd.DataFrame(
        {
            "setting": ["accumulation", "budget_e_A2", "utc_offset"],
            "value": [table.accumulation, table.budget, table.utc_offset],
        }
    )
    # every text cell stored as text: an image named "=1+2.mdoc" is no formula
    write_workbook(
        {
            "images": table.frame,
            "current calibration": table.calibration.frame,
            "settings": settings,
        },
        path,
    )


def read_excel(cls, path):
    """Read a workbook written by :func:`write_excel`."""
    try:
        sheets = pd.read_excel(
            Path(path),
            sheet_name=None,
            engine="openpyxl",
            dtype={c: str for c in _TEXT + ("probe", "method", "date", "note")},
        )
    except (OSError, ValueError, KeyError) as exc:
        raise InvalidDataError(f"cannot read {path} as an Excel workbook: {exc}") from exc
    if "images" not in sheets:
        raise InvalidDataError(f"{path}: no sheet 'images'")
    settings = {}
    if "settings" in sheets:
        values = dict(zip(sheets["settings"]["setting"], sheets["settings"]["value"]))
        settings["accumulation"] = values.get("accumulation", "exposure")
        budget = values.get("budget_e_A2")
        settings["budget"] = None if missing(budget) else float(budget)
        offset = values.get("utc_offset")
        settings["utc_offset"] = None if missing(offset) else str(offset)
    if "current calibration" in sheets:
        settings["calibration"] = CurrentCalibration.from_frame(
            sheets["current calibration"], f"{path} (current calibration)"
        )
    return cls.from_frame(sheets["images"], f"{path} (images)", **settings)


def to_json(table) -> str:
    """Everything entered (rows, calibration, settings) as one JSON document."""

    return json.dumps(
        {
            "format": "napari-emcal dose table",
            "version": 1,
            "saved": datetime.now().isoformat(timespec="seconds"),
            "accumulation": table.accumulation,
            "budget": table.budget,
            "utc_offset": table.utc_offset,
            "images": table.records(),
            "calibration": table.calibration.records(),
        },
        indent=1,
    )


def from_json(cls, text: str, source: str = "session"):
    """The table :func:`to_json` wrote."""
    try:
        document = json.loads(text)
        if document.get("format") != "napari-emcal dose table":
            raise ValueError("not a napari-emcal dose table")
        calibration = (
            CurrentCalibration.from_frame(
                pd.DataFrame(document["calibration"], columns=None), f"{source} (calibration)"
            )
            if document["calibration"]
            else CurrentCalibration()
        )
        images = pd.DataFrame(document["images"])
        settings = {
            "calibration": calibration,
            "accumulation": document["accumulation"],
            "budget": document["budget"],
            "utc_offset": document.get("utc_offset"),
        }
        if images.empty:
            return cls(**settings)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", IncompleteDataWarning)
            return cls.from_frame(images, source, **settings)
    except EmcalError as exc:
        raise InvalidDataError(f"{source} is not a sound dose table session: {exc}") from exc
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InvalidDataError(
            f"{source} is not a dose table session: {type(exc).__name__} {exc}"
        ) from exc
