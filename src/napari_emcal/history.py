"""A calibration history: every accepted calibration with its time, setting, uncertainty and
source, in a local SQLite database, and the drift of a value against the previous one.

The database is one file (the standard library's ``sqlite3``): several napari windows and
CLI processes may write at once, each write is one transaction and SQLite's file lock
serialises them (a writer waits up to :data:`BUSY_TIMEOUT_S` for another). The rollback
journal is kept (not WAL), so the file also works on a network share; there, SQLite is only
as safe as the share's file locking (NFS without working locks can corrupt a database that
two machines write at the same moment).

Values and uncertainties are stored in the units of the saved JSON of each tool: degrees
for angles, m for lengths of the twin, nm for pixel sizes, pA for currents.
"""

from __future__ import annotations

import json
import math
import os
import socket
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from .errors import InvalidDataError, InvalidParameterError

__all__ = [
    "BUSY_TIMEOUT_S",
    "compare_with_history",
    "TOLERANCES",
    "Entry",
    "History",
    "default_history_path",
    "drift_warnings",
    "magnification_setting",
    "beam_setting",
    "current_setting",
    "high_defocus_setting",
]

#: How long a writer waits for another process's write (s).
BUSY_TIMEOUT_S = 30.0
#: Tools whose calibrations are kept.
TOOLS = (
    "overfocus",
    "pixel_size",
    "high_defocus",
    "current",
    "image_shift",
    "stage_shift",
    "high_defocus_is",
    "beam_intensity",
    "dead_time",
    "camera_length",
)
_MATRIX = {"dcol_dx": 0.0, "dcol_dy": 0.0, "drow_dx": 0.0, "drow_dy": 0.0}
#: Changes below these are not drift, whatever the uncertainties (value units).
TOLERANCES = {
    "overfocus": {"scan_rotation_deg": 0.5, "flip_y": 0, "overfocus_m": 5e-8},
    "pixel_size": {"pixel_size_nm": 0.0, "angle_deg": 0.5},
    "high_defocus": {"scale": 0.01, "rotation_deg": 0.5},
    "current": {"current_pa": 0.0},
    "camera_length": {"camera_length_m": 0.0, "axis_ratio": 0.0},
    # SerialEM's matrices (px per unit): three standard errors decide
    "image_shift": _MATRIX,
    "stage_shift": _MATRIX,
    "high_defocus_is": {"scale": 0.01, "rotation_deg": 0.5},
    "beam_intensity": {"c0": 0.0, "c1": 0.0, "c2": 0.0},
    "dead_time": {"dead_time_s": 0.001},
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS calibrations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tool TEXT NOT NULL,
    time TEXT NOT NULL,
    setting TEXT NOT NULL DEFAULT '',
    instrument TEXT NOT NULL DEFAULT '',
    value_json TEXT NOT NULL,
    uncertainty_json TEXT NOT NULL DEFAULT '{}',
    source TEXT NOT NULL DEFAULT '',
    host TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS calibrations_tool_setting ON calibrations (tool, setting, time);
"""


def default_history_path() -> Path:
    """``$NAPARI_EMCAL_HISTORY``, or ``calibration_history.sqlite`` in the user data folder."""
    override = os.environ.get("NAPARI_EMCAL_HISTORY")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_data_dir("napari-emcal")) / "calibration_history.sqlite"


@dataclass
class Entry:
    """One stored calibration."""

    id: int
    tool: str
    time: str  # ISO 8601, UTC
    setting: str
    instrument: str
    values: dict
    uncertainty: dict = field(default_factory=dict)
    source: str = ""

    def to_json_dict(self) -> dict:
        """The entry as strict JSON (a value that is not finite, which older histories may
        hold, becomes null)."""
        return {
            "tool": self.tool,
            "time": self.time,
            "setting": self.setting,
            "instrument": self.instrument,
            "values": _json_safe(self.values),
            "uncertainty": _json_safe(self.uncertainty),
            "source": self.source,
        }


class History:
    """The calibration history database at ``path`` (default :func:`default_history_path`)."""

    def __init__(self, path=None):
        self.path = Path(path) if path is not None else default_history_path()

    def _connect(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S)
            connection.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise InvalidDataError(
                f"cannot open the calibration history {self.path}: {exc}"
            ) from exc
        return connection

    def record(
        self,
        tool: str,
        values: dict,
        uncertainty: dict | None = None,
        *,
        setting: str = "",
        instrument: str = "",
        source: str = "",
        time: str | None = None,
    ) -> int:
        """Store one calibration; returns its id.

        Parameters
        ----------
        tool : {"overfocus", "pixel_size", "high_defocus", "current"}
        values, uncertainty : dict
            Name -> number (or bool), in the units of the tool's saved JSON.
        setting : str
            What makes two calibrations comparable (e.g. ``"magnification=5000"``).
        instrument, source : str
            The microscope (when known) and the file the calibration came from.
        time : str, optional
            ISO 8601; default now (UTC).
        """
        if tool not in TOOLS:
            raise InvalidParameterError(f"tool must be one of {', '.join(TOOLS)}; got {tool!r}")
        if not isinstance(values, dict) or not values:
            raise InvalidParameterError("values must be a non-empty dict of name: number")
        values = _numbers(values, "values")
        uncertainty = _numbers(uncertainty or {}, "uncertainty", missing_ok=True)
        stamp = _time(time) if time is not None else datetime.now(UTC).isoformat("T", "seconds")
        row = (
            tool,
            stamp,
            setting,
            instrument,
            json.dumps(values, allow_nan=False),
            json.dumps(uncertainty, allow_nan=False),
            str(source),
            socket.gethostname(),
        )
        connection = self._connect()
        try:
            with connection:  # one transaction: all of the row or nothing
                cursor = connection.execute(
                    "INSERT INTO calibrations (tool, time, setting, instrument, value_json, "
                    "uncertainty_json, source, host) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    row,
                )
            return int(cursor.lastrowid)
        except sqlite3.Error as exc:
            raise InvalidDataError(
                f"cannot write to the calibration history {self.path}: {exc}"
            ) from exc
        finally:
            connection.close()

    def entries(
        self, tool: str | None = None, *, since: str | None = None, setting: str | None = None
    ) -> list[Entry]:
        """Stored calibrations, oldest first, optionally of one tool, setting, or since a
        date (ISO 8601, e.g. ``2026-11-01``)."""
        query, arguments = "SELECT * FROM calibrations WHERE 1=1", []
        if tool is not None:
            query += " AND tool = ?"
            arguments.append(tool)
        if setting is not None:
            query += " AND setting = ?"
            arguments.append(setting)
        if since is not None:
            query += " AND time >= ?"
            arguments.append(_since(since))
        query += " ORDER BY time, id"
        connection = self._connect()
        try:
            rows = connection.execute(query, arguments).fetchall()
        except sqlite3.Error as exc:
            raise InvalidDataError(
                f"cannot read the calibration history {self.path}: {exc}"
            ) from exc
        finally:
            connection.close()
        return [
            Entry(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), json.loads(r[6]), r[7])
            for r in rows
        ]

    def previous(self, tool: str, setting: str = "") -> Entry | None:
        """The latest calibration of ``tool`` at ``setting``, or None."""
        found = self.entries(tool, setting=setting)
        return found[-1] if found else None

    def compare(
        self, tool: str, values: dict, uncertainty: dict, setting: str = ""
    ) -> tuple[Entry | None, list[str]]:
        """``(previous, drift warnings)``: the latest calibration of ``tool`` at
        ``setting`` and how the given one moved from it (nothing is recorded)."""
        previous = self.previous(tool, setting)
        return previous, drift_warnings(previous, values, uncertainty, TOLERANCES[tool])

    def keep(
        self, tool: str, values: dict, uncertainty: dict, **where
    ) -> tuple[Entry | None, list[str]]:
        """Record a calibration after comparing it with the previous one at the same
        setting: ``(previous, drift warnings)`` (what the CLI and the widgets show)."""
        found = self.compare(tool, values, uncertainty, where.get("setting", ""))
        self.record(tool, values, uncertainty, **where)
        return found


def _numbers(values: dict, what: str, *, missing_ok: bool = False) -> dict:
    """``values`` with every entry a finite number or a bool (None dropped where
    ``missing_ok``), or InvalidParameterError naming the first that is not."""
    out = {}
    for name, value in values.items():
        if value is None and missing_ok:
            continue
        if isinstance(value, bool):
            out[str(name)] = value
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if isinstance(value, str) or not math.isfinite(number):
            raise InvalidParameterError(
                f"{what}: {name} must be a finite number to be kept in the history; got {value!r}"
            )
        out[str(name)] = number
    return out


def _time(text) -> str:
    """An ISO 8601 time (a date alone is midnight); naive times are taken as UTC."""
    try:
        stamp = datetime.fromisoformat(str(text))
    except ValueError:
        raise InvalidParameterError(
            f"time must be an ISO 8601 date and time (e.g. 2026-11-01T09:30:00Z); got {text!r}"
        ) from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.astimezone(UTC).isoformat("T", "seconds")


def _json_safe(values: dict) -> dict:
    return {
        k: None if isinstance(v, float) and not math.isfinite(v) else v
        for k, v in (values or {}).items()
    }


def magnification_setting(magnification) -> str:
    """The history's setting of a calibration made at ``magnification`` ("" = unknown)."""
    return f"magnification={magnification:g}" if magnification else ""


def _known(value) -> bool:
    return value is not None and value == value and value != ""


def beam_setting(**parts) -> str:
    """The history's setting from named parts, unknown ones left out, in the given order:
    ``beam_setting(defocus_um=-100, probe="micro", spot=5)`` ->
    ``"defocus_um=-100, probe=micro, spot=5"``."""
    return ", ".join(
        f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}"
        for name, value in parts.items()
        if _known(value)
    )


def high_defocus_setting(defocus_um, *, probe=None, spot=None, intensity=None) -> str:
    """The history's setting of a high-defocus calibration (defocus in µm)."""
    return beam_setting(
        defocus_um=float(defocus_um),
        probe=probe if _known(probe) else None,
        spot=None if not _known(spot) else int(spot),
        intensity=None if not _known(intensity) else float(intensity),
    )


def current_setting(voltage_kv, spot, *, aperture_um=None, probe=None) -> str:
    """The history's setting of a beam-current calibration."""
    return beam_setting(
        voltage_kv=float(voltage_kv),
        spot=int(spot),
        aperture_um=float(aperture_um) if aperture_um else None,
        probe=probe or None,
    )


def _since(text: str) -> str:
    try:
        moment = datetime.fromisoformat(str(text))
    except ValueError:
        raise InvalidParameterError(
            f"--since must be a date or time in ISO 8601 (2026-11-01); got {text!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def drift_warnings(
    previous: Entry | None, values: dict, uncertainty: dict, tolerance: dict
) -> list[str]:
    """Sentences for each value that moved since ``previous`` by more than its
    ``tolerance`` and more than three times the combined standard error."""
    if previous is None:
        return []
    out = []
    for name, limit in tolerance.items():
        if name not in values or name not in previous.values:
            continue
        new, old = values[name], previous.values[name]
        if isinstance(new, bool) or isinstance(old, bool):
            if new != old:
                out.append(f"{name} changed from {old} to {new} since {previous.time}")
            continue
        change = float(new) - float(old)
        if name.endswith("deg"):
            change = (change + 180.0) % 360.0 - 180.0
        sigma = math.hypot(
            float(uncertainty.get(name) or 0.0), float(previous.uncertainty.get(name) or 0.0)
        )
        if abs(change) > max(limit, 3 * sigma):
            out.append(
                f"{name} moved by {change:+.4g} since {previous.time} ({old:.6g} -> {new:.6g}; "
                f"tolerance {limit:g}, 3 sigma {3 * sigma:.2g})"
            )
    return out


def compare_with_history(tool: str, values: dict, sigma: dict, setting: str = "") -> str:
    """How a calibration compares with the previous one kept at its setting, in words
    (nothing is recorded: a report or a dock only reads the history)."""
    from .errors import EmcalError

    try:
        previous, warnings = History().compare(tool, values, sigma, setting)
    except EmcalError as exc:
        return f"{tool}: history not readable ({exc})"
    if previous is None:
        return f"{tool}: nothing kept at this setting before"
    if warnings:
        return f"{tool}: DRIFT since {previous.time[:16]}: " + "; ".join(warnings)
    return f"{tool}: agrees with the calibration of {previous.time[:16]}"
