"""The dose table: flux, per-image dose and cumulative dose for every image of an experiment.

Pure computation (pandas). One row per image holds the conditions it was recorded under;
:attr:`DoseTable.frame` adds the computed columns. A row that cannot be computed (negative
current, zero area, missing time...) keeps its entries and says why in ``problems``; the
other rows are computed as usual.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import IncompleteDataWarning, InvalidParameterError
from ..tables import Table, missing
from ..times import check_utc_offset
from . import table_files
from .calibration import CurrentCalibration
from .columns import _AWARE, _parse_times, _time_text, check_values
from .columns import ACCUMULATION as ACCUMULATION
from .columns import DERIVED as DERIVED
from .columns import INPUT as INPUT
from .columns import MODES as MODES
from .columns import OPTIONAL as OPTIONAL
from .columns import PER_IMAGE as PER_IMAGE
from .columns import PRIOR_TOLERANCE as PRIOR_TOLERANCE
from .columns import PRIOR_TOLERANCE_E_A2 as PRIOR_TOLERANCE_E_A2
from .columns import RECORDS as RECORDS
from .columns import SCHEMA as SCHEMA
from .cumulative import accumulate
from .flux import compute_row

__all__ = ["ACCUMULATION", "DERIVED", "INPUT", "DoseTable"]


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
        check_values(values)
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
        computed = [compute_row(row, self.calibration) for row in rows.to_dict("records")]
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

    def _accumulate(self, rows: pd.DataFrame, times: pd.Series, problems: list[list[str]]):
        """The acquisition order, cumulative dose, where it came from, whether it is a lower
        bound, and how the row relates to others, group by group (``series``): see
        :func:`napari_emcal.dose.cumulative.accumulate`."""
        return accumulate(rows, times, problems, self.accumulation)

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
        table_files.write_excel(self, path)

    @classmethod
    def from_excel(cls, path) -> DoseTable:
        """Read a workbook written by :meth:`to_excel`."""
        return table_files.read_excel(cls, path)

    # -- the whole session, for autosave ------------------------------------------------------
    def to_json(self) -> str:
        """Everything entered (rows, calibration, settings) as one JSON document."""
        return table_files.to_json(self)

    @classmethod
    def from_json(cls, text: str, source: str = "session") -> DoseTable:
        """The table :meth:`to_json` wrote."""
        return table_files.from_json(cls, text, source)


# -- helpers --------------------------------------------------------------------------------
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
