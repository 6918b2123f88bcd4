"""Settings that persist between sessions (e.g. where heavy passes run).

A small JSON file in the user's configuration folder (``platformdirs``), or
``$NAPARI_EMCAL_SETTINGS``; written atomically.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ._files import atomic_write_text
from .engine import check_executor
from .times import check_utc_offset

__all__ = ["check_data_folders", "load_settings", "save_setting", "settings_path"]

#: ``dose_utc_offset``: the instruments' offset from UTC ("+01:00") for dose-table times
#: written without one; None: such times are the instrument's local time, as written.
#: ``data_folders``: folders besides a 4D file's own from which napari may read the data
#: the file points at (HDF5 external storage, linked files; see
#: :func:`napari_emcal.io.confine.allowed_folders`).
DEFAULTS: dict[str, Any] = {"executor": "local", "dose_utc_offset": None, "data_folders": []}


def settings_path() -> Path:
    override = os.environ.get("NAPARI_EMCAL_SETTINGS")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_config_dir("napari-emcal")) / "settings.json"


def load_settings() -> dict[str, Any]:
    """The saved settings over the defaults (an unreadable file gives the defaults)."""
    try:
        saved = json.loads(settings_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        saved = {}
    settings = {**DEFAULTS, **(saved if isinstance(saved, dict) else {})}
    try:
        settings["executor"] = check_executor(settings["executor"])
    except ValueError:
        settings["executor"] = DEFAULTS["executor"]
    try:
        settings["dose_utc_offset"] = check_utc_offset(settings["dose_utc_offset"])
    except ValueError:
        settings["dose_utc_offset"] = None
    folders = settings["data_folders"]
    # a folder since removed is dropped rather than failing every read
    settings["data_folders"] = [
        f for f in (folders if isinstance(folders, list) else []) if _is_folder(f)
    ]
    return settings


def _is_folder(value) -> bool:
    return isinstance(value, str) and bool(value) and Path(value).expanduser().is_dir()


def check_data_folders(value) -> list[str]:
    """``value`` (a folder, or a list of folders) as a list of resolved folder names.

    Raises
    ------
    InvalidParameterError
        A name that is not an existing folder.
    """
    from .io.confine import check_folders

    return [str(f) for f in check_folders(value or ())]


def save_setting(key: str, value) -> None:
    """Store one setting (validated: an executor must be a known name or an address)."""
    if key == "executor":
        value = check_executor(value)
    elif key == "dose_utc_offset":
        value = check_utc_offset(value)
    elif key == "data_folders":
        value = check_data_folders(value)
    atomic_write_text(settings_path(), json.dumps({**load_settings(), key: value}, indent=1))
