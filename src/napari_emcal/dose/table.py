"""The dose table: flux, per-image dose and cumulative dose for every image of an experiment.

Pure computation (pandas). One row per image holds the conditions it was recorded under;
:attr:`DoseTable.frame` adds the computed columns. A row that cannot be computed (negative
current, zero area, missing time...) keeps its entries and says why in ``problems``; the
other rows are computed as usual.
"""

from __future__ import annotations

import json
import math
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import EmcalError, IncompleteDataWarning, InvalidDataError, InvalidParameterError
from ..tables import Column, Table, missing
from ..units import to_si
from .calibration import CurrentCalibration
from .formulas import flux_from_counts, frame_time, stem_flux, stem_probe_dose, tem_flux

__all__ = ["ACCUMULATION", "DERIVED", "INPUT", "DoseTable"]

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
    "source",
)
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
    "cumulative_e_A2",
    "cumulative_lower_bound",
    "over_budget",
    "problems",
)
_TEXT = ("image", "time", "mode", "probe", "source")
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


class DoseTable(Table):
    """Images of an experiment with their flux, dose and cumulative dose.

    Parameters
    ----------
    calibration : CurrentCalibration, optional
        Where currents are looked up for rows without a typed or recorded ``current_pa``.
    accumulation : {"exposure", "wall_clock"}
        ``"exposure"``: the cumulative dose is the sum of the images' doses (the beam is
        blanked between exposures). ``"wall_clock"``: the specimen is illuminated
        continuously from the first image on, under each image's conditions until the next
        one starts; the cumulative dose at an image is the flux x time until its start plus
        its own dose.
    budget : float, optional
        Dose budget in e⁻/Å²; rows whose cumulative dose exceeds it are ``over_budget``.

    Notes
    -----
    Columns (``INPUT``): ``time`` (ISO 8601), ``mode`` ("TEM" or "STEM"), ``voltage_kv``,
    ``spot``, ``aperture_um`` (condenser), ``probe``, ``magnification``, ``pixel_size_nm``
    (at the specimen; the scan step in STEM), ``shape_y``/``shape_x`` (image or scan
    pixels), ``exposure_s`` (TEM), ``dwell_us``, ``flyback_us`` (per line) or
    ``frame_time_s`` (STEM), ``current_pa`` (typed or recorded; else looked up),
    ``illuminated_diameter_um`` (TEM beam diameter), ``counts_per_pixel_per_s`` and
    ``counts_per_electron`` (TEM flux from camera counts of the bare beam), ``source``.

    TEM: flux = I / (e · π D²/4), or from camera counts when the current or diameter is
    unknown; dose = flux x exposure. STEM: flux = I / (e · FOV), FOV = shape x pixel size;
    dose = flux x frame time (n_y (n_x dwell + flyback), or ``frame_time_s``); per probe
    position I · dwell / (e · pixel²).
    """

    COLUMNS = SCHEMA
    DERIVED = DERIVED
    SORT_BY = ("time",)
    NAME = "dose table"

    def __init__(
        self,
        calibration: CurrentCalibration | None = None,
        accumulation: str = "exposure",
        budget: float | None = None,
    ):
        super().__init__()
        self.calibration = calibration if calibration is not None else CurrentCalibration()
        self.accumulation = accumulation
        self.budget = budget

    # -- settings -------------------------------------------------------------------------
    @property
    def accumulation(self) -> str:
        return self._accumulation

    @accumulation.setter
    def accumulation(self, value: str) -> None:
        if value not in ACCUMULATION:
            raise InvalidParameterError(
                f"accumulation must be one of {', '.join(ACCUMULATION)}; got {value!r}"
            )
        self._accumulation = value

    @property
    def budget(self) -> float | None:
        return self._budget

    @budget.setter
    def budget(self, value) -> None:
        try:
            number = None if value is None else float(value)
        except (TypeError, ValueError):
            number = math.nan
        if isinstance(value, bool) or (
            number is not None and not (math.isfinite(number) and number > 0)
        ):
            raise InvalidParameterError(
                f"the dose budget must be a positive number of e⁻/Å²; got {value!r}"
            )
        self._budget = None if value is None else float(value)

    # -- rows -----------------------------------------------------------------------------
    def add(self, **values) -> int:
        """Add an image; returns its row index (rows are kept in time order, unknown last).

        Values that are not numbers where numbers belong raise InvalidParameterError;
        values that are numbers but physically invalid (negative current...) are kept and
        reported in the row's ``problems``.
        """
        return self.add_row(**values)

    def sort_keys(self, rows: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"time": _parse_times(rows["time"])})

    def _convert(self, data: pd.DataFrame):
        if "time" in data.columns:
            data = data.assign(time=data["time"].map(_time_text))
        rows, problems = super()._convert(data)
        rows["mode"] = rows["mode"].str.upper()
        return rows, problems

    # -- computation ----------------------------------------------------------------------
    @property
    def frame(self) -> pd.DataFrame:
        """Every row with the computed columns (``DERIVED``), in time order."""
        rows = self._rows.copy()
        times = _parse_times(rows["time"])
        computed = [self._compute(row) for row in rows.to_dict("records")]
        for column in PER_IMAGE:
            rows[column] = [c[column] for c in computed]
        problems = [c["problems"] for c in computed]
        for i, naive in enumerate(_zone_notes(rows["time"])):
            if naive:
                problems[i].append(
                    "time without a UTC offset among times with one: taken as UTC (add the "
                    "offset, e.g. +01:00, if it was local time)"
                )
        for i, (text, time) in enumerate(zip(rows["time"], times)):
            if missing(text):
                problems[i].append("time missing: not in the cumulative dose")
            elif pd.isna(time):
                problems[i].append(
                    f"time {text!r} not understood (use ISO 8601, e.g. "
                    "2026-11-20T14:03:05): not in the cumulative dose"
                )
        first = times.dropna().min() if times.notna().any() else pd.NaT
        rows["elapsed_s"] = (times - first).dt.total_seconds()
        cumulative, lower = self._accumulate(
            times,
            rows["flux_e_A2_s"].to_numpy(float),
            rows["dose_e_A2"].to_numpy(float),
            rows["prior_dose_e_A2"].fillna(0.0).to_numpy(float),
        )
        rows["cumulative_e_A2"] = cumulative
        rows["cumulative_lower_bound"] = lower
        rows["over_budget"] = (cumulative > self.budget) if self.budget else False
        rows["problems"] = ["; ".join(p) for p in problems]
        return rows

    def _compute(self, row: dict) -> dict[str, Any]:
        problems: list[str] = []
        out = {
            "current_used_pa": np.nan,
            "current_from": "",
            "flux_e_A2_s": np.nan,
            "dose_e_A2": np.nan,
            "dose_from": "",
            "dose_estimate_e_A2": np.nan,
            "probe_dose_e_A2": np.nan,
            "problems": problems,
        }
        mode = row["mode"]
        current_pa = row["current_pa"]
        if not missing(current_pa):
            out["current_from"] = "entered"
        else:
            found = self.calibration.lookup(
                row["voltage_kv"], row["spot"], row["aperture_um"], row["probe"] or None
            )
            current_pa = found.current_pa
            out["current_from"] = f"calibration: {found.message}" if current_pa else ""
            if current_pa is None:
                current_pa = np.nan
                if mode == "STEM" or not _has_counts(row):
                    problems.append(f"current unknown ({found.message})")
        if not missing(current_pa) and current_pa < 0:
            problems.append(f"negative current ({current_pa:g} pA)")
            current_pa = np.nan
        out["current_used_pa"] = current_pa
        current = to_si(current_pa, "pA")
        if mode == "STEM":
            self._stem(row, current, out)
        elif mode == "TEM":
            self._tem(row, current, out)
        elif missing(row["recorded_dose_e_A2"]):
            problems.append("mode unknown: enter TEM or STEM")
        out["dose_from"] = "" if math.isnan(out["dose_e_A2"]) else "computed"
        _use_recorded_dose(row, out)
        return out

    @staticmethod
    def _stem(row: dict, current: float, out: dict) -> None:
        problems = out["problems"]
        pixel, shape = row["pixel_size_nm"], (row["shape_y"], row["shape_x"])
        if missing(pixel):
            problems.append("pixel size (scan step) unknown")
            return
        if missing(shape[0]) or missing(shape[1]):
            problems.append("scan shape unknown")
            return
        step = to_si(pixel, "nm")
        fov = (shape[0] * step, shape[1] * step)
        dwell = to_si(row["dwell_us"], "us") if not missing(row["dwell_us"]) else None
        flyback = to_si(row["flyback_us"], "us") if not missing(row["flyback_us"]) else 0.0
        try:
            flux = stem_flux(current, fov) if not math.isnan(current) else np.nan
            if not missing(row["frame_time_s"]):
                seconds = float(row["frame_time_s"])
                if seconds <= 0:
                    raise InvalidParameterError(f"frame time must be positive; got {seconds:g} s")
                dwell = dwell if dwell is not None else seconds / (shape[0] * shape[1])
            elif dwell is not None:
                seconds = frame_time(shape, dwell, flyback)
            else:
                problems.append("dwell time or frame time missing")
                out["flux_e_A2_s"] = flux
                return
            out["flux_e_A2_s"] = flux
            out["dose_e_A2"] = flux * seconds
            if not math.isnan(current):
                out["probe_dose_e_A2"] = stem_probe_dose(current, step, dwell)
        except InvalidParameterError as exc:
            problems.append(str(exc))
            out["flux_e_A2_s"] = out["dose_e_A2"] = out["probe_dose_e_A2"] = np.nan

    @staticmethod
    def _tem(row: dict, current: float, out: dict) -> None:
        problems = out["problems"]
        diameter = row["illuminated_diameter_um"]
        zero_area = not missing(diameter) and diameter <= 0
        if zero_area:
            problems.append(
                f"illuminated area is zero: the beam diameter must be positive "
                f"(got {diameter:g} µm)"
            )
            diameter = np.nan
        try:
            if not math.isnan(current) and not missing(diameter):
                flux = tem_flux(current, illuminated_diameter=to_si(diameter, "um"))
            elif _has_counts(row):
                if missing(row["pixel_size_nm"]):
                    problems.append("pixel size unknown: needed for the flux from counts")
                    return
                flux = flux_from_counts(
                    row["counts_per_pixel_per_s"],
                    row["counts_per_electron"],
                    to_si(row["pixel_size_nm"], "nm"),
                )
                out["current_from"] = out["current_from"] or "camera counts"
            else:
                if missing(diameter) and not zero_area:
                    problems.append(
                        "illuminated area unknown: enter the beam diameter, or "
                        "camera counts per second with counts per electron"
                    )
                return
        except InvalidParameterError as exc:
            problems.append(str(exc).replace("(m)", "").replace("  ", " "))
            return
        out["flux_e_A2_s"] = flux
        exposure = row["exposure_s"]
        if missing(exposure):
            problems.append("exposure time missing")
        elif exposure <= 0:
            problems.append(f"exposure time must be positive; got {exposure:g} s")
        else:
            out["dose_e_A2"] = flux * exposure

    def _accumulate(self, times: pd.Series, flux: np.ndarray, dose: np.ndarray, prior: np.ndarray):
        """Cumulative dose per row (NaN without a time) and whether it is a lower bound.

        ``prior`` is dose received just before an image from exposures the table does not
        hold (SerialEM's PriorRecordDose: focusing and tracking in low-dose mode)."""
        n = len(times)
        cumulative = np.full(n, np.nan)
        lower = np.zeros(n, bool)
        timed = np.flatnonzero(times.notna().to_numpy())  # rows are in time order already
        seconds = (
            (times.iloc[timed] - times.iloc[timed].min()).dt.total_seconds().to_numpy()
            if len(timed)
            else np.array([])
        )
        total, incomplete = 0.0, False
        for k, i in enumerate(timed):
            own = dose[i]
            if math.isnan(own):
                incomplete = True
                own = 0.0
            total += prior[i]
            cumulative[i] = total + own
            lower[i] = incomplete
            if self.accumulation == "exposure":
                total += own
            elif k + 1 < len(timed):
                if math.isnan(flux[i]):
                    incomplete = True
                else:
                    total += flux[i] * (seconds[k + 1] - seconds[k])
        return cumulative, lower

    # -- files ----------------------------------------------------------------------------
    def summary(self) -> str:
        """The table in a sentence or two: images, cumulative dose, budget, problems."""
        frame, budget = self.frame, self.budget
        if frame.empty:
            return "no images yet"
        text = f"{len(frame)} image(s)"
        finite = frame.cumulative_e_A2.dropna()
        if len(finite):
            text += f", cumulative {finite.iloc[-1]:.4g} e⁻/Å²"
            if frame.cumulative_lower_bound.any():
                text += " (at least: some doses unknown)"
        if budget:
            over = frame.index[frame.over_budget]
            text += (
                f"; budget {budget:g} e⁻/Å² exceeded from {frame.image[over[0]]}"
                if len(over)
                else f"; within the {budget:g} e⁻/Å² budget"
            )
        problems = int((frame.problems != "").sum())
        if problems:
            text += f"\n{problems} row(s) need attention (see 'problems')"
        return text

    def to_csv(self, path) -> None:
        """All columns, the computed ones too (for a spreadsheet); from_csv reads it back.
        Text that would start a formula is escaped; written atomically."""
        from .._files import write_csv

        write_csv(self.frame, path)

    @classmethod
    def from_frame(
        cls, data: pd.DataFrame, source: str = "table", *, where: str = "row", **settings
    ) -> DoseTable:
        """Rows from a frame (computed columns are recomputed, not read).

        Raises
        ------
        InvalidDataError
            Unknown columns, no ``image`` column, or a value of the wrong kind (the row
            is named).

        Warns
        -----
        IncompleteDataWarning
            Columns of ``INPUT`` the frame does not have (left empty).
        """
        table = super().from_frame(data, source, where=where, **settings)
        absent = [c for c in INPUT if c not in data.columns]
        if absent:
            warnings.warn(
                f"{source}: no column(s) {', '.join(absent)}; left empty",
                IncompleteDataWarning,
                stacklevel=2,
            )
        return table

    def to_excel(self, path) -> None:
        """An Excel workbook: sheet "images" (all columns) and "current calibration"."""
        from .._files import write_workbook

        settings = pd.DataFrame(
            {"setting": ["accumulation", "budget_e_A2"], "value": [self.accumulation, self.budget]}
        )
        # every text cell stored as text: an image named "=1+2.mdoc" is no formula
        write_workbook(
            {
                "images": self.frame,
                "current calibration": self.calibration.frame,
                "settings": settings,
            },
            path,
        )

    @classmethod
    def from_excel(cls, path) -> DoseTable:
        """Read a workbook written by :meth:`to_excel`."""
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
        if "current calibration" in sheets:
            settings["calibration"] = CurrentCalibration.from_frame(
                sheets["current calibration"], f"{path} (current calibration)"
            )
        return cls.from_frame(sheets["images"], f"{path} (images)", **settings)

    # -- the whole session, for autosave ------------------------------------------------------
    def to_json(self) -> str:
        """Everything entered (rows, calibration, settings) as one JSON document."""

        return json.dumps(
            {
                "format": "napari-emcal dose table",
                "version": 1,
                "saved": datetime.now().isoformat(timespec="seconds"),
                "accumulation": self.accumulation,
                "budget": self.budget,
                "images": self.records(),
                "calibration": self.calibration.records(),
            },
            indent=1,
        )

    @classmethod
    def from_json(cls, text: str, source: str = "session") -> DoseTable:
        """The table :meth:`to_json` wrote."""
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


# -- helpers --------------------------------------------------------------------------------
def _time_text(value):
    """Times entered as datetimes are kept as ISO 8601 text."""
    if isinstance(value, (datetime, pd.Timestamp)) and not pd.isna(value):
        return pd.Timestamp(value).isoformat()
    return value


def _parse_times(texts: pd.Series) -> pd.Series:
    """Times to compare, as naive UTC: those with a UTC offset converted, those without taken
    as UTC (said in their problems by :func:`_zone_notes` when others have an offset).
    Never raises on a mix of both."""
    values = texts.where(texts.astype(bool), None)
    parsed = pd.to_datetime(values, errors="coerce", format="ISO8601", utc=True)
    return parsed.dt.tz_localize(None)


def _zone_notes(texts: pd.Series) -> list[bool]:
    """Rows whose time has no offset in a table where others have one: they are compared
    as if in UTC, which is said in their problems."""
    text = texts.fillna("").astype(str)
    # an ISO offset ends the text: +02:00, -0500 or Z
    aware = list(text.str.contains(r"(?:[+-]\d{2}:?\d{2}|Z)$", regex=True))
    if not any(aware):
        return [False] * len(aware)
    return [bool(t) and not a for t, a in zip(texts, aware)]


#: Problems that only keep the dose from being *computed* (not a recorded one from counting).
_ESTIMATE_ONLY = (
    "current unknown",
    "illuminated area unknown",
    "pixel size",
    "scan shape",
    "dwell time",
    "mode unknown",
)


def _use_recorded_dose(row: dict, out: dict) -> None:
    """A dose the acquisition software recorded (SerialEM's ExposureDose) is the image's
    dose; the one computed from current or counts stays beside it as a check."""
    recorded = row["recorded_dose_e_A2"]
    if missing(recorded):
        return
    out["dose_estimate_e_A2"] = out["dose_e_A2"]
    out["dose_e_A2"], out["dose_from"] = float(recorded), "recorded in the file"
    exposure = row["exposure_s"]
    if math.isnan(out["flux_e_A2_s"]) and not missing(exposure) and exposure > 0:
        out["flux_e_A2_s"] = float(recorded) / float(exposure)
    # what kept the estimate from being computed does not stop the recorded dose
    out["problems"][:] = [p for p in out["problems"] if not p.startswith(_ESTIMATE_ONLY)]


def _has_counts(row: dict) -> bool:
    return not missing(row["counts_per_pixel_per_s"]) and not missing(row["counts_per_electron"])
