"""Offsets from UTC of instrument times (shared by the dose table and the settings)."""

from __future__ import annotations

import re

from .errors import InvalidParameterError

__all__ = ["check_utc_offset"]


def check_utc_offset(value) -> str | None:
    """``"+01:00"`` from ``"+01:00"``, ``"+0100"``, ``"-5"``, ``"UTC+1"`` or ``"Z"``; None
    for None or empty.

    Raises
    ------
    InvalidParameterError
        Not an offset of at most 14 hours.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    text = str(value).strip().upper().removeprefix("UTC").strip()
    if text in ("Z", ""):
        return "+00:00"
    match = re.fullmatch(r"([+-])(\d{1,2})(?::?(\d{2}))?", text)
    if not match or int(match.group(2)) > 14 or int(match.group(3) or 0) >= 60:
        raise InvalidParameterError(
            f"a UTC offset is written like +01:00 or -05:00 (at most 14 h); got {value!r}"
        )
    return f"{match.group(1)}{int(match.group(2)):02d}:{int(match.group(3) or 0):02d}"
