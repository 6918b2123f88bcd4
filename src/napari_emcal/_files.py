"""Files: writing so that a crash never leaves a broken one, and mapping .npy files."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write_text", "check_readable", "map_npy"]


def atomic_write_text(path, text: str) -> None:
    """Replace ``path`` with ``text`` so that it is never seen half-written: a temporary
    file in the same folder, flushed to disk, renamed over the old one in one step."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def map_npy(path):
    """``np.load(path, mmap_mode="r")`` (reads only the header), with every way a broken or
    unreadable file fails as one :class:`~napari_emcal.errors.InvalidDataError` naming the
    file (NumPy raises EOFError for an empty file, ValueError for a cut one, OSError...)."""
    import numpy as np

    from .errors import InvalidDataError

    try:
        return np.load(path, mmap_mode="r")
    except PermissionError as exc:
        raise InvalidDataError(f"cannot read {path}: permission denied") from exc
    except (OSError, ValueError, EOFError) as exc:
        detail = "the file is empty" if isinstance(exc, EOFError) else str(exc)
        raise InvalidDataError(f"cannot read {path} as a .npy array: {detail}") from exc


def check_readable(path) -> None:
    """Refuse, with a message that names the cause, a file that cannot be read at all: a
    missing, empty or unreadable file (libraries report these as 'list index out of range',
    'truth value of an empty array is ambiguous' or 'does not contain a header')."""
    from .errors import InvalidDataError

    path = Path(path)
    if not path.exists():
        raise InvalidDataError(f"cannot read {path}: No such file")
    if path.is_dir():
        return
    if not os.access(path, os.R_OK):
        raise InvalidDataError(f"cannot read {path}: permission denied")
    if path.stat().st_size == 0:
        raise InvalidDataError(f"cannot read {path}: the file is empty")
