"""Autosave of the dose table: atomic writes, so a crash never leaves a broken file.

The session is written to a temporary file in the same folder, flushed to disk, and then
renamed over the previous autosave in one step (``os.replace``): a reader always finds
either the previous complete file or the new complete file.
"""

from __future__ import annotations

import os
from pathlib import Path

from .._files import atomic_write_text
from ..errors import InvalidDataError
from .table import DoseTable

__all__ = ["Autosave", "atomic_write_text", "default_autosave_path"]


def default_autosave_path() -> Path:
    """Where the widget autosaves: ``$NAPARI_EMCAL_AUTOSAVE`` or the user data folder
    (e.g. ``~/.local/share/napari-emcal/dose_table_autosave.json`` on Linux)."""
    override = os.environ.get("NAPARI_EMCAL_AUTOSAVE")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_data_dir("napari-emcal")) / "dose_table_autosave.json"


class Autosave:
    """The autosave file of a dose table session."""

    def __init__(self, path=None):
        self.path = Path(path) if path is not None else default_autosave_path()

    def save(self, table: DoseTable) -> None:
        atomic_write_text(self.path, table.to_json())
        # temporary files left by a crash during an earlier save
        for stale in self.path.parent.glob(f".{self.path.name}.*.tmp"):
            stale.unlink(missing_ok=True)

    def exists(self) -> bool:
        return self.path.is_file()

    def load(self) -> DoseTable:
        """The saved session.

        Raises
        ------
        InvalidDataError
            No autosave, or it is not a dose table session.
        """
        try:
            text = self.path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidDataError(f"cannot read the autosave {self.path}: {exc}") from exc
        return DoseTable.from_json(text, str(self.path))

    @property
    def backup_path(self) -> Path:
        return self.path.with_name(self.path.stem + ".previous" + self.path.suffix)

    def discard(self) -> None:
        """Set the autosave aside (after the user declined to restore it): it is moved to
        :attr:`backup_path`, replacing an older backup, so it can still be recovered."""
        if self.exists():
            os.replace(self.path, self.backup_path)
