"""Helpers the calibration tables share: missing values, numbers, checking read columns."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pandas as pd

from .errors import InvalidDataError, InvalidParameterError


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


def to_number(value, name: str) -> float:
    """A float (NaN for missing), or InvalidParameterError naming the field."""
    if missing(value):
        return float("nan")
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise InvalidParameterError(f"{name} must be a number; got {value!r}") from exc
    if math.isinf(number):
        raise InvalidParameterError(f"{name} must be finite; got {value!r}")
    return number


def text_or_empty(value) -> str:
    return "" if missing(value) else str(value).strip()


def read_table(data: pd.DataFrame, columns, required, source: str) -> Iterator[tuple[int, dict]]:
    """(row number from 1, {column: value}) for each row, after checking the columns.

    Raises
    ------
    InvalidDataError
        Unknown columns or missing required ones, named in the message.
    """
    unknown = [str(c) for c in data.columns if c not in columns]
    if unknown:
        raise InvalidDataError(
            f"{source}: unknown column(s) {', '.join(unknown)}; expected "
            f"some of {', '.join(columns)}"
        )
    absent = [c for c in required if c not in data.columns]
    if absent:
        raise InvalidDataError(f"{source}: missing column(s) {', '.join(absent)}")
    for line, record in enumerate(data.to_dict("records"), start=1):
        yield line, {k: v for k, v in record.items() if not missing(v)}
