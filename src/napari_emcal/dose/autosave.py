"""Autosave of the dose table: one file per window, atomic writes, damaged files read in part.

Every dose-table window writes its own session file in the autosave folder and holds a lock
file beside it while it is open, so two windows or processes never overwrite or delete
each other's work. A session whose lock is gone (or whose process died) is *unsaved work*:
the next window offers every such session back. Each save goes to a temporary file that is
flushed and renamed over the previous one in one step (``os.replace``): a reader always
finds a complete file. An autosave from an older or damaged schema is read as far as it can
be, with a note naming what was dropped.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .._files import atomic_write_text
from ..errors import EmcalError, InvalidDataError
from .table import DoseTable

__all__ = [
    "Autosave",
    "AutosaveFolder",
    "atomic_write_text",
    "default_autosave_path",
    "read_session",
]

#: A temporary file older than this (s) was left by a crash, not by a save in progress.
STALE_TEMPORARY_S = 3600.0


def default_autosave_path() -> Path:
    """The legacy single autosave file, whose folder holds the sessions:
    ``$NAPARI_EMCAL_AUTOSAVE`` or the user data folder (e.g.
    ``~/.local/share/napari-emcal/dose_table_autosave.json`` on Linux)."""
    override = os.environ.get("NAPARI_EMCAL_AUTOSAVE")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_data_dir("napari-emcal")) / "dose_table_autosave.json"


def read_session(text: str, source: str) -> tuple[DoseTable, list[str]]:
    """A dose table from a saved session, reading what it can: ``(table, notes)``.

    Settings that are missing or invalid take their defaults, and rows that do not load are
    dropped, each named in ``notes``.

    Raises
    ------
    InvalidDataError
        When nothing of a dose table can be read (not JSON, or not a dose table session).
    """
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise InvalidDataError(f"{source} is not JSON: {exc}") from exc
    if not isinstance(document, dict) or document.get("format") != "napari-emcal dose table":
        raise InvalidDataError(f"{source} is not a napari-emcal dose table session.")
    try:  # the whole document at once when it is sound
        return DoseTable.from_json(text, source), []
    except EmcalError:
        pass
    notes = []
    settings = {}
    accumulation = document.get("accumulation")
    if accumulation in ("exposure", "wall_clock"):
        settings["accumulation"] = accumulation
    else:
        notes.append(f"accumulation {accumulation!r} is not known: 'exposure' used")
    budget = document.get("budget")
    try:
        DoseTable(budget=budget)
        settings["budget"] = budget
    except (EmcalError, TypeError, ValueError):
        notes.append(f"budget {budget!r} is not a dose: dropped")
    calibration_rows = document.get("calibration") or []
    empty = {"format": "napari-emcal dose table", "images": [], "accumulation": "exposure"}
    try:
        settings["calibration"] = DoseTable.from_json(
            json.dumps({**empty, "budget": None, "calibration": calibration_rows}), source
        ).calibration
    except EmcalError as exc:
        notes.append(f"the current calibration could not be read ({exc}): dropped")
    table = DoseTable(**settings)
    rows = document.get("images")
    rows = rows if isinstance(rows, list) else []
    try:
        table = DoseTable.from_frame(pd.DataFrame(rows), source, **settings) if rows else table
    except (EmcalError, ValueError, TypeError, KeyError):
        kept = []
        for row in rows:  # row by row: keep every one that loads
            try:
                DoseTable.from_frame(pd.DataFrame([row]), source, **settings)
            except (EmcalError, ValueError, TypeError, KeyError):
                continue
            kept.append(row)
        if len(kept) < len(rows):
            notes.append(f"{len(rows) - len(kept)} of {len(rows)} image row(s) could not be read")
        if kept:
            table = DoseTable.from_frame(pd.DataFrame(kept), source, **settings)
    return table, notes


class Autosave:
    """One autosave file (a session), with the lock that says a window is using it."""

    def __init__(self, path=None):
        self.path = Path(path) if path is not None else default_autosave_path()
        self._locked = False

    # -- the file ------------------------------------------------------------------------------
    def save(self, table: DoseTable) -> None:
        atomic_write_text(self.path, table.to_json())
        # only this session's temporary files, and only those a crash left long ago: another
        # process may be writing its own right now
        now = time.time()
        for stale in self.path.parent.glob(f".{self.path.name}.*.tmp"):
            try:
                if now - stale.stat().st_mtime > STALE_TEMPORARY_S:
                    stale.unlink(missing_ok=True)
            except OSError:
                pass

    def exists(self) -> bool:
        return self.path.is_file()

    def load(self) -> DoseTable:
        """The saved session (all of it).

        Raises
        ------
        InvalidDataError
            No autosave, or it is not a sound dose table session.
        """
        return DoseTable.from_json(self._text(), str(self.path))

    def load_readable(self) -> tuple[DoseTable, list[str]]:
        """What can be read of the session, and notes on what was dropped
        (:func:`read_session`)."""
        return read_session(self._text(), str(self.path))

    def _text(self) -> str:
        try:
            return self.path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise InvalidDataError(f"cannot read the autosave {self.path}: {exc}") from exc

    @property
    def modified(self) -> pd.Timestamp:
        """When the session was last saved (local time)."""
        return pd.Timestamp.fromtimestamp(self.path.stat().st_mtime)

    @property
    def backup_path(self) -> Path:
        return self.path.with_name(self.path.stem + ".previous" + self.path.suffix)

    def discard(self) -> None:
        """Set the autosave aside (after the user declined to restore it): it is moved to
        :attr:`backup_path`, replacing an older backup, so it can still be recovered."""
        if self.exists():
            os.replace(self.path, self.backup_path)

    # -- the lock ------------------------------------------------------------------------------
    @property
    def lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    def lock(self) -> bool:
        """Take the session for this process; False when a living process holds it."""
        if self._locked:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _attempt in range(2):
            try:
                handle = os.open(self.lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if self.held_elsewhere():
                    return False
                self.lock_path.unlink(missing_ok=True)  # left by a process that died
                continue
            with os.fdopen(handle, "w") as stream:
                json.dump(_Owner.me().__dict__, stream)
            self._locked = True
            return True
        return False

    def release(self) -> None:
        if self._locked:
            self.lock_path.unlink(missing_ok=True)
            self._locked = False

    def held_elsewhere(self) -> bool:
        """Whether another living process (or a process on another machine) holds it."""
        if self._locked:
            return False
        try:
            owner = _Owner(**json.loads(self.lock_path.read_text()))
        except FileNotFoundError:
            return False
        except (OSError, ValueError, TypeError):
            return True  # being written this very moment, or unreadable: leave it alone
        return owner.alive()


@dataclass
class _Owner:
    """Who holds a session: process id and machine."""

    pid: int
    host: str

    @classmethod
    def me(cls) -> _Owner:
        return cls(os.getpid(), socket.gethostname())

    def alive(self) -> bool:
        if self.host != socket.gethostname():
            return True  # a shared folder: another machine's process cannot be checked
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


class AutosaveFolder:
    """The folder of dose-table sessions: a new one per window, and the unsaved ones."""

    PREFIX = "dose_table-"

    def __init__(self, folder=None):
        self.folder = Path(folder) if folder is not None else default_autosave_path().parent
        self.legacy = (
            default_autosave_path() if folder is None else self.folder / "dose_table_autosave.json"
        )

    def new_session(self) -> Autosave:
        """A session file of its own for this window, locked."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for n in range(1000):
            session = Autosave(self.folder / f"{self.PREFIX}{stamp}-{os.getpid()}-{n}.json")
            if not session.exists() and not session.lock_path.exists() and session.lock():
                return session
        raise InvalidDataError(f"cannot create an autosave session in {self.folder}")

    def unsaved(self, exclude: Autosave | None = None) -> list[Autosave]:
        """Sessions no open window holds (their window closed or crashed), newest first;
        the single autosave file of earlier versions among them."""
        paths = sorted(self.folder.glob(f"{self.PREFIX}*.json"))
        if self.legacy.is_file():
            paths.append(self.legacy)
        out = []
        for path in paths:
            if exclude is not None and path == exclude.path:
                continue
            session = Autosave(path)
            if not session.held_elsewhere():
                out.append(session)
        return sorted(out, key=lambda s: s.path.stat().st_mtime, reverse=True)

    def close_normally(self, session: Autosave) -> Path | None:
        """A window closed normally: its session is not unsaved work to offer back. One
        that holds rows moves to ``closed/`` (still recoverable; returned), an empty one
        is removed; the lock goes either way."""
        target = None
        try:
            if session.exists():
                table, _ = session.load_readable()
                if len(table) or len(table.calibration):
                    target = self.folder / "closed" / session.path.name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(session.path, target)
                else:
                    session.path.unlink(missing_ok=True)
        except (OSError, EmcalError):
            target = None  # left where it is: offered next time rather than lost
        session.release()
        return target

    def set_aside(self, session: Autosave) -> Path:
        """Move a session out of the offer into ``set_aside/`` (still recoverable)."""
        target = self.folder / "set_aside" / session.path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(session.path, target)
        session.lock_path.unlink(missing_ok=True)
        return target
