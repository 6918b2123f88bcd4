"""Files: writing so that a crash never leaves a broken one, never over an input, and
nothing a spreadsheet would run; reading only what is a file of the dataset; mapping .npy.

Every file the project writes goes through :func:`atomic_write` (or its text, CSV and
workbook forms): the content goes to a temporary file in the destination's folder, is
flushed to disk, given the permissions the user's umask asks for, and renamed over the
destination in one step, so a crash or a full disk leaves the previous file whole.
"""

from __future__ import annotations

import math
import os
import stat
import tempfile
from collections.abc import Callable, Iterable, Mapping
from contextlib import contextmanager
from pathlib import Path

__all__ = [
    "FORMULA_START",
    "MAX_TEXT_BYTES",
    "atomic_write",
    "atomic_write_text",
    "check_readable",
    "inside_folder",
    "map_npy",
    "protecting",
    "read_json",
    "read_text_limited",
    "refuse_overwrite",
    "spreadsheet_frame",
    "spreadsheet_text",
    "unescape_spreadsheet_text",
    "write_csv",
    "write_workbook",
]

#: What a spreadsheet takes as the start of a formula (OWASP, CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
#: The largest text input read (CSV, JSON, .mdoc, parameters, calibrations), bytes.
MAX_TEXT_BYTES = 64 * 1024 * 1024


# -- writing ---------------------------------------------------------------------------------
def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def refuse_overwrite(outputs: Iterable, inputs: Iterable) -> None:
    """Refuse an output that is one of the inputs (paths and links resolved, the same file
    under two names too): :class:`~napari_emcal.errors.InvalidParameterError` naming both.
    ``None`` entries and ``"-"`` (standard output) are ignored."""
    from .errors import InvalidParameterError

    def keys(path):
        path = Path(path)
        found = {str(path.resolve())}
        try:
            info = path.stat()
            found.add((info.st_dev, info.st_ino))
        except OSError:
            pass
        return found

    given = [(Path(p), keys(p)) for p in inputs if p is not None and str(p) != "-"]
    for output in outputs:
        if output is None or str(output) == "-":
            continue
        mine = keys(output)
        for source, theirs in given:
            if mine & theirs:
                raise InvalidParameterError(
                    f"{output} is the input {source}: refusing to write over it (name another file)"
                )


#: Files no write may replace while a command runs (its inputs): see :func:`protecting`.
_PROTECTED: list = []
#: Files read together: an input ``.hdr`` protects its ``.mib`` and the other way round.
_COMPANIONS = {".hdr": (".mib",), ".mib": (".hdr",), ".ser": (".emi",), ".emi": (".ser",)}


def _with_companions(paths: Iterable) -> list:
    out = []
    for path in paths:
        if path is None or str(path) == "-":
            continue
        path = Path(path)
        out.append(path)
        out.extend(path.with_suffix(s) for s in _COMPANIONS.get(path.suffix.lower(), ()))
    return out


@contextmanager
def protecting(inputs: Iterable):
    """While inside, :func:`atomic_write` refuses to replace any of ``inputs`` (and the
    files read with them, such as a ``.mib``'s ``.hdr``): a command that writes into a
    folder cannot overwrite what it read."""
    added = _with_companions(inputs)
    _PROTECTED.extend(added)
    try:
        yield
    finally:
        for path in added:
            _PROTECTED.remove(path)


def atomic_write(path, write: Callable[[Path], object], *, inputs: Iterable = ()) -> Path:
    """Write ``path`` through ``write(temporary_path)`` and rename it into place.

    The temporary file is in the same folder (so the rename is atomic) and has the same
    suffix (writers choose the format by it). On any failure it is removed and ``path``
    keeps its previous content. The new file's permissions follow the umask (as ``open``
    would give), not the temporary file's 0600.

    Parameters
    ----------
    path : path-like
        The destination; its folder is made when missing.
    write : callable
        Writes the whole file at the path it is given.
    inputs : iterable of path-like
        Files this output must not replace (see :func:`refuse_overwrite`), besides those
        of an enclosing :func:`protecting`.
    """
    path = Path(path)
    refuse_overwrite([path], [*_with_companions(inputs), *_PROTECTED])
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(
        prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent
    )
    os.close(handle)
    temporary = Path(name)
    try:
        write(temporary)
        with open(temporary, "rb+") as stream:
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path, text: str, *, inputs: Iterable = ()) -> Path:
    """Replace ``path`` with ``text`` (UTF-8) so that it is never seen half-written."""
    return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"), inputs=inputs)


# -- spreadsheets -------------------------------------------------------------------------------
def _is_number_text(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def spreadsheet_text(value):
    """``value`` made safe for a CSV cell: a text a spreadsheet would take for a formula
    (one starting with ``= + - @``, a tab or a carriage return, OWASP's list) gets a leading
    ``'``, which spreadsheets show as text; so does a text already starting with ``'``, so
    that :func:`unescape_spreadsheet_text` gives back exactly what was written. Numbers,
    and texts that are plain finite numbers (``-1.5``), are left as they are."""
    if not isinstance(value, str):
        return value
    if value.startswith("'") or (value.startswith(FORMULA_START) and not _is_number_text(value)):
        return "'" + value
    return value


def unescape_spreadsheet_text(value):
    """The inverse of :func:`spreadsheet_text`: one leading ``'`` removed (a CSV the project
    wrote reads back as it was)."""
    if isinstance(value, str) and value.startswith("'"):
        return value[1:]
    return value


def spreadsheet_frame(frame):
    """A copy of a pandas frame with every text cell and column name passed through
    :func:`spreadsheet_text` (number columns untouched)."""
    import pandas as pd

    safe = frame.copy()
    for column in safe.columns:
        values = safe[column]
        if not (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)):
            safe[column] = values.map(spreadsheet_text)
    safe.columns = [spreadsheet_text(str(c)) for c in safe.columns]
    return safe


def write_csv(frame, path, *, inputs: Iterable = ()) -> Path:
    """``frame`` (no index) as a CSV with formula-like text escaped, written atomically."""
    safe = spreadsheet_frame(frame)
    # RFC 4180's CRLF: pandas then quotes a cell holding a lone CR too, which with "\n"
    # line ends it would write bare, cutting its row in two for every reader
    return atomic_write(
        path, lambda p: safe.to_csv(p, index=False, lineterminator="\r\n"), inputs=inputs
    )


def write_workbook(sheets: Mapping, path, *, inputs: Iterable = ()) -> Path:
    """Frames as the sheets of an Excel workbook (openpyxl), every text cell stored as
    text: a name such as ``=1+2.mdoc`` never becomes a formula. Written atomically."""
    import pandas as pd

    def write(temporary: Path) -> None:
        with pd.ExcelWriter(temporary, engine="openpyxl") as writer:
            for name, frame in sheets.items():
                frame.to_excel(writer, sheet_name=name, index=False)
                for row in writer.sheets[name].iter_rows():
                    for cell in row:
                        # openpyxl takes any text starting with "=" for a formula
                        if cell.data_type == "f":
                            cell.data_type = "s"

    return atomic_write(path, write, inputs=inputs)


# -- reading --------------------------------------------------------------------------------
def map_npy(path):
    """``np.load(path, mmap_mode="r")`` (reads only the header), with every way a broken or
    unreadable file fails as one :class:`~napari_emcal.errors.InvalidDataError` naming the
    file (NumPy raises EOFError for an empty file, ValueError for a cut one, OSError...)."""
    import numpy as np

    from .errors import InvalidDataError

    check_readable(path)
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
    'truth value of an empty array is ambiguous' or 'does not contain a header'), and
    anything that is not a regular file or a folder (a FIFO would block forever, a device
    such as /dev/zero never ends)."""
    from .errors import InvalidDataError

    path = Path(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise InvalidDataError(f"cannot read {path}: No such file") from None
    except OSError as exc:
        raise InvalidDataError(f"cannot read {path}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(info.st_mode):
        return
    if not stat.S_ISREG(info.st_mode):
        kind = (
            "a FIFO (named pipe)"
            if stat.S_ISFIFO(info.st_mode)
            else "a device"
            if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode)
            else "a socket"
            if stat.S_ISSOCK(info.st_mode)
            else "not a regular file"
        )
        raise InvalidDataError(f"cannot read {path}: it is {kind}, not a data file")
    if not os.access(path, os.R_OK):
        raise InvalidDataError(f"cannot read {path}: permission denied")
    if info.st_size == 0:
        raise InvalidDataError(f"cannot read {path}: the file is empty")
    if path.suffix.lower() in MRC_SUFFIXES:
        _check_mrc_header(path, info.st_size)


#: Suffixes of MRC files (IMOD's stacks and reconstructions too).
MRC_SUFFIXES = (".mrc", ".mrcs", ".st", ".ali", ".rec", ".map")
#: Bytes per value of each MRC mode (0 int8, 1 int16, 2 float32, 3 complex int16,
#: 4 complex float32, 6 uint16, 12 float16, 101 4-bit packed: half a byte).
_MRC_MODE_BYTES = {0: 1, 1: 2, 2: 4, 3: 4, 4: 8, 6: 2, 12: 2, 101: 0.5}


def _check_mrc_header(path: Path, size: int) -> None:
    """An MRC file must be as long as its header says (1024 bytes, the extended header,
    nx x ny x nz values): a lying or cut header is refused before a reader allocates or
    loops over what it declares."""
    import struct

    from .errors import InvalidDataError

    with open(path, "rb") as stream:
        header = stream.read(1024)
    if len(header) < 1024:
        raise InvalidDataError(f"{path.name} is {len(header)} bytes: shorter than an MRC header")
    little = header[212] & 0x0F == 4 or header[212] == 0  # machine stamp 0x44 or unset
    order = "<" if little else ">"
    nx, ny, nz, mode = struct.unpack_from(order + "4i", header, 0)
    (extended,) = struct.unpack_from(order + "i", header, 92)
    per_value = _MRC_MODE_BYTES.get(mode)
    if per_value is None or min(nx, ny, nz) <= 0 or extended < 0:
        raise InvalidDataError(
            f"{path.name}: not a readable MRC header (size {nx} x {ny} x {nz}, mode {mode})"
        )
    expected = 1024 + extended + int(nx * ny * nz * per_value)
    if size < expected:
        raise InvalidDataError(
            f"{path.name} is shorter than its header says: {size} bytes, the header declares "
            f"{nz} x {ny} x {nx} values of mode {mode} ({expected} bytes); cut while copying, "
            "or the header is wrong."
        )


def read_json(path, *, what: str = "JSON file"):
    """A JSON document read from ``path`` with every way it can fail as one
    :class:`~napari_emcal.errors.InvalidDataError`: too large (:data:`MAX_TEXT_BYTES`), a
    device or FIFO, not UTF-8, not JSON, an integer too long to convert or nesting too
    deep for Python."""
    import json

    from .errors import InvalidDataError

    text = read_text_limited(path, what=what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidDataError(f"{path} is not valid JSON: {exc}") from None
    except RecursionError:
        raise InvalidDataError(f"{path}: JSON nested too deeply to be a {what}") from None
    except ValueError as exc:  # Python refuses integers of more than 4300 digits
        detail = "an integer thousands of digits long" if "digits" in str(exc) else str(exc)
        raise InvalidDataError(f"{path} holds {detail}: not a {what}") from None


def read_text_limited(path, *, limit: int = MAX_TEXT_BYTES, what: str = "text file") -> str:
    """A text input (CSV, JSON, .mdoc, parameters) as a string, refused when it is not a
    regular file, is larger than ``limit`` bytes, or is not UTF-8 text:
    :class:`~napari_emcal.errors.InvalidDataError` saying so."""
    from .errors import InvalidDataError

    check_readable(path)
    path = Path(path)
    if path.is_dir():
        raise InvalidDataError(f"cannot read {path}: it is a folder, not a {what}")
    size = path.stat().st_size
    if size > limit:
        raise InvalidDataError(
            f"{path} is {size / 2**20:.0f} MiB: larger than any {what} ({limit / 2**20:.0f} "
            "MiB at most)"
        )
    try:
        with open(path, "rb") as stream:
            raw = stream.read(limit + 1)
    except OSError as exc:
        raise InvalidDataError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(raw) > limit:
        raise InvalidDataError(f"{path} grew past {limit / 2**20:.0f} MiB while read")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidDataError(
            f"{path} is not UTF-8 text (saved in another encoding?): save the {what} as UTF-8"
        ) from None


def inside_folder(target, folder, *, what: str = "file") -> Path:
    """``target`` (relative to ``folder`` when not absolute) resolved, refused unless it is
    a regular file inside ``folder`` (links resolved): data files a dataset points at must
    not reach out of its folder, nor to a device.

    Raises
    ------
    InvalidDataError
        The target is outside the folder, missing or not a regular file.
    """
    from .errors import InvalidDataError

    folder = Path(folder).resolve()
    target = Path(target)
    resolved = (target if target.is_absolute() else folder / target).resolve()
    if resolved != folder and folder not in resolved.parents:
        raise InvalidDataError(
            f"the {what} {target} is outside the dataset's folder {folder}: refused (copy it "
            "beside the dataset)"
        )
    try:
        info = resolved.stat()
    except OSError:
        raise InvalidDataError(f"the {what} {target} does not exist in {folder}") from None
    if not stat.S_ISREG(info.st_mode):
        raise InvalidDataError(f"the {what} {target} is not a regular file: refused")
    return resolved
