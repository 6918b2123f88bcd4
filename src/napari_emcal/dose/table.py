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
from ..times import check_utc_offset
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
        utc_offset: str | None = None,
    ):
        self._pending: list[dict[str, Any]] = []
        super().__init__()
        self.calibration = calibration if calibration is not None else CurrentCalibration()
        self.accumulation = accumulation
        self.budget = budget
        self.utc_offset = utc_offset

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
    def utc_offset(self) -> str | None:
        """The instruments' offset from UTC (``"+01:00"``) for times written without one,
        or None: such times are then the instrument's local time, compared as written."""
        return self._utc_offset

    @utc_offset.setter
    def utc_offset(self, value) -> None:
        self._utc_offset = check_utc_offset(value)
        self._sort()  # the rows' time order may change with it

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
    def add(self, **values) -> None:
        """Add an image (rows are kept in time order, unknown last).

        The row is checked at once and joins the table in one batch with the others added
        before the table is next read, so that adding stays constant in time per row (a
        20 000-section ``.mdoc`` in seconds); hence no row index is returned.

        Values that are not numbers where numbers belong raise InvalidParameterError;
        values that are numbers but physically invalid (negative current...) are kept and
        reported in the row's ``problems``.
        """
        values = self._known(values)
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
        self._pending.append(values)

    # the entered rows, with the ones added since the table was last read joined in one go
    @property
    def _rows(self) -> pd.DataFrame:
        if self._pending:
            pending, self._pending = self._pending, []
            try:
                self._insert(self.prepare(pd.DataFrame(pending)))
            except InvalidParameterError as batch:
                # a value add() let through: keep the others, then name it
                good, bad = [], (None, batch)
                for values in pending:
                    try:
                        good.append(self.prepare(pd.DataFrame([values])))
                    except InvalidParameterError as exc:
                        bad = (values.get("image"), exc)
                if good:
                    self._insert(pd.concat(good, ignore_index=True))
                raise InvalidParameterError(f"row {bad[0]!r} not added: {bad[1]}") from None
        return self.__dict__["_entered"]

    @_rows.setter
    def _rows(self, value: pd.DataFrame) -> None:
        self.__dict__["_entered"] = value

    def sort_keys(self, rows: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(
            {"time": _parse_times(rows["time"], getattr(self, "_utc_offset", None))}
        )

    def _convert(self, data: pd.DataFrame):
        if "time" in data.columns:
            data = data.assign(time=data["time"].map(_time_text))
        rows, problems = super()._convert(data)
        rows["mode"] = rows["mode"].str.upper()
        return rows, problems

    # -- computation ----------------------------------------------------------------------
    @property
    def frame(self) -> pd.DataFrame:
        """Every row with the computed columns (``DERIVED``), in time order.

        The cumulative dose is accumulated per ``series`` (a tilt series, a montage, a frame
        set with its tilts: one specimen area each); rows without a series form one group
        together, as before tilt series were read. See :meth:`_accumulate`.
        """
        rows = self._rows.copy()
        times = _parse_times(rows["time"], self.utc_offset)
        computed = [self._compute(row) for row in rows.to_dict("records")]
        for column in PER_IMAGE:
            rows[column] = [c[column] for c in computed]
        problems = [c["problems"] for c in computed]
        for i, note in enumerate(rows["note"]):
            if note:
                problems[i].append(note)
        for i, (text, time) in enumerate(zip(rows["time"], times)):
            if not missing(text) and pd.isna(time):
                problems[i].append(
                    f"time {text!r} not understood (use ISO 8601, e.g. "
                    "2026-11-20T14:03:05): not in the cumulative dose"
                )
        first = times.dropna().min() if times.notna().any() else pd.NaT
        rows["elapsed_s"] = (times - first).dt.total_seconds()
        result = self._accumulate(rows, times, problems)
        for column, values in result.items():
            rows[column] = values
        for i, (text, value) in enumerate(zip(rows["time"], rows["cumulative_e_A2"])):
            if missing(text) and math.isnan(value) and rows["record"].iat[i] in ("", "image"):
                problems[i].append(
                    "time missing (and no order or prior dose recorded): not in the cumulative dose"
                )
        cumulative = rows["cumulative_e_A2"].to_numpy(float)
        rows["over_budget"] = (cumulative > self.budget) if self.budget else False
        rows["problems"] = ["; ".join(p) for p in problems]
        return rows

    def notes(self) -> list[str]:
        """What applies to whole files rather than rows, one line per file: times written
        without a UTC offset, read as the instrument's local time."""
        rows = self._rows
        text = rows["time"].fillna("").astype(str)
        aware = text.str.contains(_AWARE, regex=True).to_numpy()
        naive = (text != "").to_numpy() & ~aware
        if not naive.any():
            return []
        owners = rows["source"].where(rows["source"] != "", rows["series"])
        owners = owners.where(owners != "", rows["image"])
        mixed = bool(aware.any())
        notes = []
        for owner in dict.fromkeys(owners[naive]):
            count = int((naive & (owners == owner).to_numpy()).sum())
            if self.utc_offset is not None:
                how = f"taken as UTC{self.utc_offset} (the session's UTC offset)"
            elif mixed:
                how = (
                    "compared as written with times that carry one; set the instrument's "
                    "UTC offset (session setting) if it was not UTC"
                )
            else:
                how = "compared as written (set the UTC offset to compare with other instruments)"
            notes.append(
                f"{Path(str(owner)).name}: {count} time(s) without a UTC offset, read as the "
                f"instrument's local time, {how}"
            )
        return notes

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

    def _accumulate(self, rows: pd.DataFrame, times: pd.Series, problems: list[list[str]]):
        """The acquisition order, cumulative dose, where it came from, whether it is a lower
        bound, and how the row relates to others, group by group (``series``).

        In each group the images whose doses add up (images, tilts) are put in acquisition
        order: by time where all have one, else by ``z_value`` (SerialEM's ZValue: the order
        the images were saved), else those with a time by time. An image's cumulative dose
        is then

        - its recorded prior dose plus its own (SerialEM's PriorRecordDose + ExposureDose:
          "recorded in the file"), cross-checked against the sum of the doses of the images
          before it in the group (``PRIOR_TOLERANCE``); or, without a recorded prior dose,
        - that sum plus its own (``accumulation="exposure"``), or flux x time since the
          group's first image plus its own (``"wall_clock"``, needs times).

        A montage piece is its own area: its cumulative dose is its own (plus any recorded
        prior dose). A frame set (one continuous exposure) holds the tilts cut from it
        (``frame_first``/``frame_end``): its dose is the whole exposure's, the tilts' are
        parts of it and are not added to it; the dose recorded between tilts (the frame set's
        dose less the tilts') is in no tilt's prior dose, so the tilts' cumulative doses
        after the first are lower bounds and say so.
        """
        n = len(rows)
        out = {
            "acquisition_order": np.full(n, np.nan),
            "cumulative_e_A2": np.full(n, np.nan),
            "cumulative_from": [""] * n,
            "cumulative_lower_bound": np.zeros(n, bool),
            "relation": [""] * n,
        }
        groups: dict[str, list[int]] = {}
        for i, key in enumerate(rows["series"]):
            groups.setdefault(key, []).append(i)
        # plain arrays: the loops below read them element by element
        stamps = times.to_numpy("datetime64[ns]")
        columns = {
            "record": rows["record"].to_numpy(object),
            "dose": rows["dose_e_A2"].to_numpy(float),
            "flux": rows["flux_e_A2_s"].to_numpy(float),
            "prior": rows["prior_dose_e_A2"].to_numpy(float),
            "z": rows["z_value"].to_numpy(float),
            "frames": rows["frame_first"].to_numpy(float),
            "recorded": (rows["dose_from"] == "recorded in the file").to_numpy(bool),
            # seconds since 1970 (NaN without a time)
            "seconds": np.where(
                np.isnat(stamps), np.nan, stamps.astype("int64").astype(float) / 1e9
            ),
        }
        for key, members in groups.items():
            frame_sets, order = self._accumulate_group(columns, members, key, out, problems)
            self._relate_frame_sets(rows, frame_sets, order, out, problems)
        return out

    def _accumulate_group(self, columns, members, series, out, problems):
        """One group's order and cumulative doses (see :meth:`_accumulate`); returns its
        frame sets and its counted images in acquisition order."""
        record, dose, flux = columns["record"], columns["dose"], columns["flux"]
        prior, z, stamp = columns["prior"], columns["z"], columns["seconds"]
        counted = [i for i in members if record[i] in ("", "image", "tilt")]
        pieces = [i for i in members if record[i] == "montage piece"]
        frame_sets = [i for i in members if record[i] == "frame set"]
        for i in members:
            if record[i] == "montage":
                out["relation"][i] = (
                    f"the whole montage {series}: its {len(pieces)} pieces carry the doses"
                )
        timed = ~np.isnan(stamp)
        # acquisition order
        if counted and all(timed[i] for i in counted):
            by = "time"
            order = sorted(counted, key=lambda i: (stamp[i], _or_inf(z[i]), i))
            by_z = sorted(counted, key=lambda i: (_or_inf(z[i]), i))
            if all(not math.isnan(z[i]) for i in counted) and by_z != order:
                first = next(i for i, j in zip(order, by_z) if i != j)
                problems[first].append(
                    "the times put the images in another order than their ZValues: the order "
                    "is taken from the times"
                )
        elif counted and all(not math.isnan(z[i]) for i in counted):
            by = "ZValue"
            order = sorted(counted, key=lambda i: (z[i], i))
            frames = columns["frames"]
            if all(not math.isnan(frames[i]) for i in counted):
                by_frames = sorted(counted, key=lambda i: (frames[i], i))
                if by_frames != order:
                    first = next(i for i, j in zip(order, by_frames) if i != j)
                    problems[first].append(
                        "FrameTSStartEndFrames put the tilts in another order than their "
                        "ZValues: the ZValue order is used"
                    )
        else:
            by = "time"
            order = sorted((i for i in counted if timed[i]), key=lambda i: (stamp[i], i))
        seconds = [stamp[i] for i in order]
        total, incomplete = 0.0, False
        for k, i in enumerate(order):
            out["acquisition_order"][i] = k + 1
            own = dose[i]
            if math.isnan(own):
                incomplete, own = True, 0.0
            if not math.isnan(prior[i]) and (
                self.accumulation == "exposure" or math.isnan(seconds[k])
            ):
                out["cumulative_e_A2"][i] = prior[i] + own
                out["cumulative_from"][i] = (
                    "recorded in the file (prior dose + dose)"
                    if columns["recorded"][i]
                    else "recorded prior dose + computed dose"
                )
                limit = max(PRIOR_TOLERANCE * prior[i], PRIOR_TOLERANCE_E_A2)
                if not incomplete and abs(prior[i] - total) > limit:
                    problems[i].append(
                        f"recorded prior dose {prior[i]:.4g} e⁻/Å² differs from the "
                        f"{total:.4g} e⁻/Å² of the images before it (in {by} order) by more "
                        f"than {100 * PRIOR_TOLERANCE:g} % or {PRIOR_TOLERANCE_E_A2:g} e⁻/Å²"
                        + ("" if k else ": earlier images missing from the table?")
                    )
            else:
                out["cumulative_e_A2"][i] = total + own
                out["cumulative_lower_bound"][i] = incomplete
                out["cumulative_from"][i] = (
                    "flux x time since the first image + dose"
                    if self.accumulation == "wall_clock"
                    else f"sum of the doses before it ({by} order) + dose"
                )
                if not math.isnan(prior[i]):  # wall clock: the recorded prior as a check
                    if total + PRIOR_TOLERANCE_E_A2 < prior[i] * (1 - PRIOR_TOLERANCE):
                        problems[i].append(
                            f"flux x time gives {total:.4g} e⁻/Å² before it, less than the "
                            f"recorded prior dose {prior[i]:.4g} e⁻/Å²"
                        )
            if self.accumulation == "exposure":
                total += own
            elif k + 1 < len(order):
                step = seconds[k + 1] - seconds[k]
                if math.isnan(flux[i]) or math.isnan(step):
                    incomplete = True
                else:
                    total += flux[i] * step
        for i in pieces:
            own = 0.0 if math.isnan(dose[i]) else dose[i]
            out["cumulative_e_A2"][i] = (0.0 if math.isnan(prior[i]) else prior[i]) + own
            out["cumulative_lower_bound"][i] = math.isnan(dose[i])
            out["cumulative_from"][i] = "its own dose (a montage piece is its own area)"
            out["relation"][i] = (
                f"piece of montage {series}: overlaps with its neighbours receive their doses too"
            )
        return frame_sets, order

    @staticmethod
    def _relate_frame_sets(rows, frame_sets, tilts, out, problems) -> None:
        dose = rows["dose_e_A2"].to_numpy(float)
        prior = rows["prior_dose_e_A2"].to_numpy(float)
        names = rows["image"].to_numpy(object)
        first, end = rows["frame_first"].to_numpy(float), rows["frame_end"].to_numpy(float)
        cut = [i for i in tilts if not math.isnan(first[i])]
        for n, f in enumerate(frame_sets):
            own = dose[f]
            out["cumulative_e_A2"][f] = (0.0 if math.isnan(prior[f]) else prior[f]) + (
                0.0 if math.isnan(own) else own
            )
            out["cumulative_lower_bound"][f] = math.isnan(own)
            out["cumulative_from"][f] = "recorded in the file (the whole exposure)"
            if n or not cut:
                out["relation"][f] = "a continuous exposure; no tilt of the table is cut from it"
                continue
            parts = dose[cut]
            tilts_dose = float(np.nansum(parts))
            between = own - tilts_dose
            limit = max(PRIOR_TOLERANCE * own, PRIOR_TOLERANCE_E_A2) if not math.isnan(own) else 0
            span = f"frames {first[cut].min():g}-{np.nanmax(end[cut]):g}"
            out["relation"][f] = (
                f"the continuous exposure {len(cut)} tilts ({names[cut[0]]} to "
                f"{names[cut[-1]]}, {span}) were cut from: tilts {tilts_dose:.4g} e⁻/Å²"
                + (
                    f", between tilts {between:.4g} e⁻/Å² (in no tilt); in all {own:.4g} e⁻/Å²"
                    if not math.isnan(own)
                    else "; the frame set's own dose is not recorded"
                )
            )
            if not math.isnan(own) and -between > limit:
                problems[f].append(
                    f"the tilts cut from this frame set have {tilts_dose:.4g} e⁻/Å², more than "
                    f"its {own:.4g} e⁻/Å²: not the same exposure?"
                )
            for k, i in enumerate(cut):
                text = (
                    f"frames {first[i]:g}-{end[i]:g} of {names[f]}: its dose is part of the "
                    "frame set's, not added to it"
                )
                if between > limit and k:
                    text += (
                        f"; the {between:.4g} e⁻/Å² recorded between tilts is in no prior "
                        "dose (the file does not say when it fell): this cumulative dose is a "
                        "lower bound"
                    )
                    out["cumulative_lower_bound"][i] = True
                out["relation"][i] = text

    # -- files ----------------------------------------------------------------------------
    def summary(self) -> str:
        """The table in a few lines: images, cumulative dose per group, budget, problems,
        and the notes on whole files."""
        frame, budget = self.frame, self.budget
        if frame.empty:
            return "no images yet"
        text = f"{len(frame)} image(s)"
        for series, group in frame.groupby("series", sort=False):
            finite = group.dropna(subset=["cumulative_e_A2"])
            if not len(finite):
                continue
            if series:
                text += f"\n{series}: " + _group_summary(finite)
            else:
                last = finite.sort_values("acquisition_order").iloc[-1]
                text += f", cumulative {last.cumulative_e_A2:.4g} e⁻/Å²"
                if finite.cumulative_lower_bound.any():
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
        for note in self.notes():
            text += f"\n{note}"
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
        absent = [c for c in INPUT if c not in data.columns and c not in OPTIONAL]
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
            {
                "setting": ["accumulation", "budget_e_A2", "utc_offset"],
                "value": [self.accumulation, self.budget, self.utc_offset],
            }
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
            offset = values.get("utc_offset")
            settings["utc_offset"] = None if missing(offset) else str(offset)
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
                "utc_offset": self.utc_offset,
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


# -- helpers --------------------------------------------------------------------------------
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


def _group_summary(group: pd.DataFrame) -> str:
    """One series of the summary: its images' cumulative dose, its frame set's."""
    parts = []
    counted = group[group.record.isin(["image", "tilt", ""])]
    if len(counted):
        if counted.dose_e_A2.isna().all():
            parts.append(f"{len(counted)} image(s), doses unknown")
        else:
            last = counted.sort_values("acquisition_order").iloc[-1]
            parts.append(
                f"{len(counted)} image(s), cumulative {last.cumulative_e_A2:.4g} e⁻/Å²"
                + (" (at least)" if last.cumulative_lower_bound else "")
            )
    pieces = group[group.record == "montage piece"]
    if len(pieces):
        known = pieces.dose_e_A2.dropna()
        parts.append(
            f"{len(pieces)} montage piece(s)"
            + (f", at most {known.max():.4g} e⁻/Å² each" if len(known) else ", doses unknown")
        )
    sets = group[group.record == "frame set"]
    if len(sets):
        parts.append(f"frame set {sets.cumulative_e_A2.iloc[0]:.4g} e⁻/Å² in all")
    return "; ".join(parts)


def _or_inf(value: float) -> float:
    return math.inf if math.isnan(value) else value


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
