"""The table model every calibration table is built on.

A table is rows of typed columns held in a pandas frame. A subclass declares its columns
(:class:`Column`: name, kind, what a person reads, whether required or positive), the
columns it derives, how rows are sorted and any checks of its own; the base owns entering,
correcting and removing rows, the checks, the sort, and the CSV / frame / JSON round trips.
Everything is done with column operations, never row by row, so a file of hundreds of
thousands of rows loads in seconds.

Missing values are NaN in number columns and ``""`` in text columns.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ._checks import PLAUSIBLE, out_of_range
from .errors import InvalidDataError, InvalidParameterError

__all__ = ["Column", "Table", "flag", "missing"]

KINDS = ("number", "integer", "text")
#: What a CSV's number cell may hold for "no value" (pandas' defaults).
NA_TEXT = [
    "",
    "NaN",
    "nan",
    "-NaN",
    "-nan",
    "NA",
    "N/A",
    "n/a",
    "<NA>",
    "#N/A",
    "null",
    "NULL",
    "None",
]


@dataclass(frozen=True)
class Column:
    """One column of a table.

    Attributes
    ----------
    name : str
        The column's name, with its unit as a suffix where it has one (``defocus_um``).
    kind : {"number", "integer", "text"}
    label : str
        How messages name it (default: the name).
    required : bool
        A file without this column is refused, and a row must give it.
    positive : bool
        Given values must be greater than zero.
    default : Any
        The value of a missing entry (integers need one).
    """

    name: str
    kind: str = "number"
    label: str = ""
    required: bool = False
    positive: bool = False
    default: Any = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"column kind must be one of {KINDS}; got {self.kind!r}")

    @property
    def called(self) -> str:
        return self.label or self.name

    @property
    def dtype(self):
        return {"number": "float64", "integer": "int64", "text": object}[self.kind]


def missing(value) -> bool:
    """None, NaN, NaT or an empty string."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _blank(series: pd.Series) -> np.ndarray:
    """Where a column holds nothing (None, NaN or white space)."""
    blank = pd.isna(series).to_numpy().copy()
    if pd.api.types.is_numeric_dtype(series):
        return blank  # numbers: only NaN is blank (text, of any string dtype, may be "")
    values = series.to_numpy(dtype=object)
    text = np.fromiter((isinstance(v, str) for v in values), bool, len(values))
    if text.any():
        stripped = series[text].astype(str).str.strip()
        blank[np.flatnonzero(text)] = (stripped == "").to_numpy()
    return blank


class Table:
    """Rows of typed columns (see the module docstring).

    Subclasses set :attr:`COLUMNS`, and may set :attr:`DERIVED` (columns :attr:`frame`
    adds; accepted and ignored when a file is read), :attr:`SORT_BY` (columns rows are kept
    in order of, missing values last, then in entry order), and override :meth:`check`
    (per-row problems of their own) and :attr:`frame`.
    """

    COLUMNS: ClassVar[tuple[Column, ...]] = ()
    DERIVED: ClassVar[tuple[str, ...]] = ()
    SORT_BY: ClassVar[tuple[str, ...]] = ()
    #: how messages name the table
    NAME: ClassVar[str] = "table"

    def __init__(self):
        self._rows = self.empty()

    # -- the schema ---------------------------------------------------------------------
    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(c.name for c in cls.COLUMNS)

    @classmethod
    def empty(cls) -> pd.DataFrame:
        return pd.DataFrame({c.name: pd.Series(dtype=c.dtype) for c in cls.COLUMNS})

    # -- rows -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._rows)

    @property
    def rows(self) -> pd.DataFrame:
        """The entered values (a copy)."""
        return self._rows.copy()

    @property
    def frame(self) -> pd.DataFrame:
        """The rows with any derived columns (a copy); subclasses add theirs."""
        return self._rows.copy()

    def add_row(self, **values) -> int:
        """Enter a row; returns its index (rows are kept sorted).

        Raises
        ------
        InvalidParameterError
            An unknown column, a value of the wrong kind or an invalid value (named).
        """
        new = self.prepare(pd.DataFrame([self._known(values)]))
        return int(self._insert(new)[0])

    def add_rows(self, data: pd.DataFrame) -> np.ndarray:
        """Enter many rows at once (e.g. another table's :attr:`rows`); their indices.

        Raises
        ------
        InvalidParameterError
            As :meth:`add_row`, naming the first invalid row; nothing is added then.
        """
        self._known(dict.fromkeys(data.columns))
        if not len(data):
            return np.array([], dtype=int)
        return self._insert(self.prepare(data.reset_index(drop=True), where="row"))

    def update(self, index: int, **values) -> int:
        """Correct entries of a row; returns its new index. Nothing changes on error."""
        self._check_index(index)
        merged = {**self._rows.loc[index].to_dict(), **self._known(values)}
        row = self.prepare(pd.DataFrame([merged]))
        rows = self._rows.copy()
        rows.loc[index] = row.iloc[0]
        self._rows = rows.astype(self.empty().dtypes.to_dict())
        return int(self._sort(np.array([index]))[0])

    def remove(self, index: int) -> None:
        """Delete a row."""
        self._check_index(index)
        self._rows = self._rows.drop(index).reset_index(drop=True)

    def _check_index(self, index) -> None:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise InvalidParameterError(f"a row number must be a whole number; got {index!r}")
        if not 0 <= index < len(self._rows):
            raise InvalidParameterError(
                f"no row {index} in the {self.NAME}; it has {len(self._rows)} rows"
            )

    def _known(self, values: Mapping[str, Any]) -> dict[str, Any]:
        unknown = [k for k in values if k not in self.names()]
        if unknown:
            raise InvalidParameterError(
                f"unknown column(s) {', '.join(unknown)}; the {self.NAME} has "
                f"{', '.join(self.names())}"
            )
        return dict(values)

    def _insert(self, new: pd.DataFrame) -> np.ndarray:
        """Append prepared rows; their positions after sorting."""
        start = len(self._rows)
        frames = [f for f in (self._rows, new) if len(f)]
        self._rows = (pd.concat(frames, ignore_index=True) if frames else self.empty()).astype(
            self.empty().dtypes.to_dict()
        )
        return self._sort(np.arange(start, start + len(new)))

    def _sort(self, new: np.ndarray | None = None) -> np.ndarray:
        """Sort the rows by :attr:`SORT_BY`; where the rows at positions ``new`` went."""
        n = len(self._rows)
        if not self.SORT_BY or n < 2:
            return np.asarray(new if new is not None else [], dtype=int)
        keys = self.sort_keys(self._rows).assign(_order=np.arange(n))
        order = keys.sort_values([*keys.columns[:-1], "_order"], na_position="last", kind="stable")[
            "_order"
        ].to_numpy()
        self._rows = self._rows.iloc[order].reset_index(drop=True)
        if new is None:
            return np.array([], dtype=int)
        where = np.empty(n, int)
        where[order] = np.arange(n)
        return where[np.asarray(new, dtype=int)]

    def sort_keys(self, rows: pd.DataFrame) -> pd.DataFrame:
        """The columns rows are sorted by (override to sort by something derived)."""
        return rows[list(self.SORT_BY)].copy()

    # -- checking values, by columns ------------------------------------------------------
    def prepare(
        self, data: pd.DataFrame, *, where: str | None = None, first: int = 1
    ) -> pd.DataFrame:
        """``data`` converted to the columns' kinds and checked.

        Raises
        ------
        InvalidParameterError
            The first invalid row's problem, prefixed by ``where`` and its number (the first
            row numbered ``first``) when ``where`` is given (e.g. ``"file.csv, line"``).
        """
        rows, problems = self._convert(data)
        problems = problems.where(problems != "", self.check(rows))
        bad = np.flatnonzero(problems.to_numpy() != "")
        if len(bad):
            prefix = f"{where} {int(bad[0]) + first}: " if where else ""
            raise InvalidParameterError(prefix + problems.iloc[int(bad[0])])
        return rows

    def check(self, rows: pd.DataFrame) -> pd.Series:
        """Problems of each converted row ('' for none): required and positive columns,
        and values outside the plausible range of their name (``_checks.PLAUSIBLE``).
        Subclasses add their own checks to what this returns."""
        problems = pd.Series("", index=rows.index, dtype=object)
        for c in self.COLUMNS:
            if c.kind == "text":
                continue
            values = rows[c.name]
            if c.required:
                problems = flag(problems, values.isna(), f"{c.called} is required")
            if c.positive:
                problems = flag(
                    problems,
                    values.notna() & ~(values > 0),
                    lambda v, c=c: f"{c.called} must be positive; got {v:g}",
                    values,
                )
            if c.name in PLAUSIBLE:  # a wrong unit or a typing error, not a calibration
                low, high, _ = PLAUSIBLE[c.name]
                size = values.abs()
                problems = flag(
                    problems,
                    values.notna() & (values != 0) & ((size < low) | (size > high)),
                    lambda v, c=c: out_of_range(c.called, v, c.name),
                    values,
                )
        return problems

    def _convert(self, data: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
        rows = pd.DataFrame(index=data.index)
        problems = pd.Series("", index=data.index, dtype=object)
        for c in self.COLUMNS:
            if c.name not in data.columns:
                column = pd.Series([c.default] * len(data), index=data.index, dtype=object)
            else:
                column = data[c.name]
            blank = _blank(column)
            if c.kind == "text":
                text = column.astype(object).where(~blank, c.default or "")
                rows[c.name] = text.map(lambda v: str(v).strip()).astype(object)
                continue
            if column.dtype == bool:
                column = column.astype(object)
            numbers = pd.to_numeric(column.where(~blank), errors="coerce").astype("float64")
            flags = (
                column.map(lambda v: isinstance(v, (bool, np.bool_))).to_numpy(bool)
                if not pd.api.types.is_numeric_dtype(column)
                else np.zeros(len(column), bool)  # a numeric column holds no booleans
            )
            wrong = (~blank & numbers.isna().to_numpy()) | flags
            problems = flag(
                problems, wrong, lambda v, c=c: f"{c.called} must be a number; got {v!r}", column
            )
            infinite = np.isinf(numbers.to_numpy())
            problems = flag(
                problems, infinite, lambda v, c=c: f"{c.called} must be finite; got {v!r}", column
            )
            numbers = numbers.where(~(wrong | infinite))
            if c.default is not None:
                numbers = numbers.fillna(float(c.default))
            if c.kind == "integer":
                fractional = numbers.notna() & (numbers != numbers.round())
                problems = flag(
                    problems,
                    fractional,
                    lambda v, c=c: f"{c.called} must be a whole number; got {v!r}",
                    column,
                )
                numbers = numbers.where(~fractional).fillna(0).round().astype("int64")
            rows[c.name] = numbers
        return rows, problems

    # -- files and frames -------------------------------------------------------------------
    @classmethod
    def from_frame(
        cls, data: pd.DataFrame, source: str = "table", *, where: str = "row", **settings
    ):
        """A table of the rows of ``data`` (derived columns are recomputed, not read).

        Raises
        ------
        InvalidDataError
            Unknown columns or missing required ones (named), or an invalid value (its row
            is named).
        """
        cls._check_columns(data.columns, source)
        table = cls(**settings)
        data = data.drop(columns=[c for c in cls.DERIVED if c in data.columns])
        data = data.reset_index(drop=True)
        if len(data):
            try:
                first = 2 if where == "line" else 1  # a CSV's line 1 holds the names
                table._insert(table.prepare(data, where=f"{source}, {where}", first=first))
            except InvalidParameterError as exc:
                raise InvalidDataError(str(exc)) from exc
        return table

    @classmethod
    def _check_columns(cls, columns: Iterable, source: str) -> None:
        columns = [str(c) for c in columns]
        unknown = [c for c in columns if c not in cls.names() and c not in cls.DERIVED]
        if unknown:
            raise InvalidDataError(
                f"{source}: unknown column(s) {', '.join(unknown)}; expected some of "
                f"{', '.join(cls.names())}"
            )
        absent = [c.name for c in cls.COLUMNS if c.required and c.name not in columns]
        if absent:
            raise InvalidDataError(f"{source}: missing column(s) {', '.join(absent)}")

    @classmethod
    def read_csv(cls, path) -> pd.DataFrame:
        """A CSV file as text for the text columns (an ID of ``007`` stays ``007``); text
        escaped against spreadsheet formulas (:func:`~napari_emcal._files.spreadsheet_text`)
        reads back as it was. A device, a FIFO or a file over ``MAX_TEXT_BYTES`` is refused."""
        import io

        from ._files import read_text_limited, unescape_spreadsheet_text

        content = read_text_limited(path, what="CSV table")
        text = {c.name: str for c in cls.COLUMNS if c.kind == "text"}
        try:
            # only an empty cell is missing text: an image named "NA" or "None" stays
            missing_marks = {c.name: [""] if c.kind == "text" else NA_TEXT for c in cls.COLUMNS}
            frame = pd.read_csv(
                io.StringIO(content), dtype=text, keep_default_na=False, na_values=missing_marks
            )
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise InvalidDataError(f"cannot read {path} as CSV: {exc}") from exc
        frame.columns = [unescape_spreadsheet_text(str(c)) for c in frame.columns]
        for column in frame.columns:
            if not pd.api.types.is_numeric_dtype(frame[column]):
                frame[column] = frame[column].map(unescape_spreadsheet_text)
        return frame

    @classmethod
    def from_csv(cls, path, **settings):
        """Read a table written by :meth:`to_csv` (or by hand with the required columns).
        A problem names the file's line."""
        return cls.from_frame(cls.read_csv(path), str(path), where="line", **settings)

    def to_csv(self, path, *, inputs=()) -> None:
        """Every column, the derived ones too (for a spreadsheet), text that would start a
        formula escaped, written atomically and never over one of ``inputs``;
        :meth:`from_csv` reads it back."""
        from ._files import write_csv

        write_csv(self.frame, path, inputs=inputs)

    def records(self) -> list[dict[str, Any]]:
        """The entered rows as JSON-ready records (NaN as None)."""
        import json

        return json.loads(self._rows.to_json(orient="records"))


def flag(problems: pd.Series, mask, message, values=None) -> pd.Series:
    """``problems`` with ``message`` (a text, or a function of the entry in ``values``) set
    where ``mask`` holds and a row has no problem yet: a check of a whole column at once."""
    mask = np.asarray(mask, bool) & (problems.to_numpy() == "")
    if not mask.any():
        return problems
    problems = problems.copy()
    where = np.flatnonzero(mask)
    if callable(message):
        problems.iloc[where] = [message(v) for v in values.iloc[where]]
    else:
        problems.iloc[where] = message
    return problems


class MedianCheckedTable(Table):
    """A table whose rows share one quantity that should be nearly constant (a pixel size
    times magnification, a calibrated over nominal camera length): rows further than
    ``tolerance`` (relative) from its median are flagged as outliers.

    Parameters
    ----------
    tolerance : float, optional
        Relative deviation from the median that counts as an outlier; the subclass's
        :attr:`TOLERANCE` when not given.
    """

    #: the default relative tolerance
    TOLERANCE: ClassVar[float] = 0.05

    def __init__(self, tolerance: float | None = None):
        tolerance = self.TOLERANCE if tolerance is None else tolerance
        if not tolerance > 0:
            raise InvalidParameterError(f"tolerance must be positive; got {tolerance}")
        super().__init__()
        self.tolerance = float(tolerance)

    def median_outliers(self, values: pd.Series) -> pd.Series:
        """Whether each value differs from the median of ``values`` by more than the
        tolerance (False where the value is missing)."""
        deviation = (values / values.median() - 1).abs()
        return (deviation > self.tolerance).fillna(False).astype(bool)
