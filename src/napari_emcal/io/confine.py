"""Checks that keep the 4D readers inside their dataset and their headers honest.

Data a file points at (HDF5 external raw storage, virtual-dataset sources, the external
links of a DECTRIS master, an EMPAD ``.xml``'s raw file) must be a regular file in the
dataset's folder (or a folder the user names, :func:`allowed_folders`), never elsewhere
nor a device; a size a header declares is checked
against what the file can hold before a reader allocates or Dask builds a graph; a
header must agree with its data (a Merlin ``.hdr``'s counter depth).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

import numpy as np

from .._files import inside_folder
from ..errors import InvalidDataError, InvalidParameterError

__all__ = [
    "MAX_DECLARED_BYTES",
    "allowed_folders",
    "check_declared_size",
    "check_empad_raw",
    "check_folders",
    "check_link",
    "check_mib_depth",
    "confined_dataset",
    "resolve_inside",
]

#: Folders besides the dataset's own that the user has named for the data a file points at
#: (``open_4d(..., allow_dirs=...)``, ``emcal ... --allow-dir``); resolved, existing.
_ALLOWED: ContextVar[tuple[Path, ...]] = ContextVar("emcal_allowed_folders", default=())


def check_folders(folders: Iterable) -> tuple[Path, ...]:
    """``folders`` (one name or several) resolved; refused unless each is an existing folder.

    Raises
    ------
    InvalidParameterError
        A name that is not an existing folder.
    """
    if isinstance(folders, (str, os.PathLike)):
        folders = [folders]
    checked = []
    for folder in folders or ():
        resolved = Path(folder).expanduser().resolve()
        if not resolved.is_dir():
            raise InvalidParameterError(
                f"{folder} is not a folder: name the folder that holds the data the dataset "
                "points at"
            )
        checked.append(resolved)
    return tuple(checked)


@contextmanager
def allowed_folders(folders: Iterable = ()) -> Iterator[tuple[Path, ...]]:
    """Within the block, the data a dataset points at may also come from ``folders`` (and
    below them): regular files only, never devices; nested blocks add to the folders.

    Raises
    ------
    InvalidParameterError
        A name that is not an existing folder.
    """
    extra = check_folders(folders)
    token = _ALLOWED.set(_ALLOWED.get() + extra)
    try:
        yield _ALLOWED.get()
    finally:
        _ALLOWED.reset(token)


def resolve_inside(target, path: Path, what: str) -> Path:
    """``target`` (relative to the folder of the dataset file ``path`` when not absolute),
    resolved, refused unless it is a regular file inside that folder or one of the
    :func:`allowed_folders`.

    Raises
    ------
    InvalidDataError
        The target is elsewhere, missing, or not a regular file (a device, a FIFO).
    """
    folder = path.parent.resolve()
    target = Path(target)
    resolved = (target if target.is_absolute() else folder / target).resolve()
    for allowed in (folder, *_ALLOWED.get()):
        if resolved == allowed or allowed in resolved.parents:
            return inside_folder(resolved, allowed, what=what)
    named = ", ".join(str(f) for f in _ALLOWED.get())
    raise InvalidDataError(
        f"the {what} {target} is outside the dataset's folder {folder}"
        + (f" and the folders named ({named})" if named else "")
        + ": refused (copy it beside the dataset, or name its folder as allowed: "
        "--allow-dir DIR, open_4d(..., allow_dirs=...), or napari's 'data_folders' setting)"
    )


#: The largest 4D dataset a header may declare (bytes): 64 TiB, beyond any detector's
#: recording; a larger one is a lying header, refused before Dask builds a graph for it.
MAX_DECLARED_BYTES = 64 * 2**40


def check_declared_size(path: Path, shape, dtype, *, linked: bool = False) -> None:
    """Refuse a dataset whose declared size is impossible: larger than
    :data:`MAX_DECLARED_BYTES`, or (stored contiguously in this file) larger than the file
    could hold with any compression."""
    try:
        count = 1
        for n in shape:
            count *= int(n)
        nbytes = count * np.dtype(dtype).itemsize
    except (TypeError, ValueError):
        return
    if nbytes > MAX_DECLARED_BYTES:
        raise InvalidDataError(
            f"{path.name} declares a dataset of {' x '.join(str(int(n)) for n in shape)} "
            f"({nbytes / 2**40:.3g} TiB): no detector records that; the header is corrupt."
        )


def _inside(path: Path, target: str, what: str) -> None:
    """A file an HDF5 file points at must be a regular file in the dataset's folder (or a
    folder the user named)."""
    if target in (".", ""):  # the file itself
        return
    resolve_inside(target, path, f"{what} of {path.name}")


def check_link(path: Path, group, key: str) -> None:
    import h5py

    link = group.get(key, getlink=True)
    if isinstance(link, h5py.ExternalLink):
        _inside(path, link.filename, "linked file")


def confined_dataset(path: Path, h5file, name: str, obj):
    """``obj``, refused when its bytes would come from outside the dataset's folder:
    external raw storage, virtual-dataset sources and external links may only name regular
    files beside (or below) the file, or in a folder the user named. External raw storage
    is then mapped here, relative to the file's folder (HDF5 itself would look relative to
    the working directory)."""
    parent, _, key = name.rpartition("/")
    check_link(path, h5file[parent] if parent else h5file, key)
    external = obj.external
    if external:
        return _external_raw(path, name, obj, external)
    if obj.is_virtual:
        for source in obj.virtual_sources():
            _inside(path, source.file_name, "virtual-dataset source")
    elif not external:
        stored = obj.id.get_storage_size()
        declared = obj.size * obj.dtype.itemsize
        if declared and (stored == 0 or (obj.chunks is None and stored < declared)):
            raise InvalidDataError(
                f"{path.name}: '{name}' declares {' x '.join(map(str, obj.shape))} values "
                f"but stores {stored} bytes of them: the header is corrupt or the file cut."
            )
    return obj


def _external_raw(path: Path, name: str, obj, external) -> np.memmap:
    """A dataset stored in one external raw file inside the dataset's folder, mapped."""
    for target, _, _ in external:
        _inside(path, os.fsdecode(target), "external raw storage")
    if len(external) != 1:
        raise InvalidDataError(
            f"{path.name}: '{name}' is stored in {len(external)} external pieces; join them "
            "into one file (or into the HDF5 file)"
        )
    target, offset, _ = external[0]
    raw = resolve_inside(os.fsdecode(target), path, f"external raw storage of {path.name}")
    nbytes = int(np.prod(obj.shape, dtype=np.float64)) * obj.dtype.itemsize
    if raw.stat().st_size < offset + nbytes:
        raise InvalidDataError(
            f"{raw.name} is {raw.stat().st_size} bytes; {path.name} declares "
            f"{' x '.join(map(str, obj.shape))} values from byte {offset} ({offset + nbytes} "
            "bytes): the file is cut or the header is wrong."
        )
    return np.memmap(raw, dtype=obj.dtype, mode="r", offset=offset, shape=obj.shape)


def check_empad_raw(path: Path) -> None:
    """An EMPAD ``.xml`` names its raw file: it must be a regular file in the ``.xml``'s
    folder or one the user named (never ``../``, an absolute path elsewhere or a device),
    as long as the scan the ``.xml`` declares."""
    from rsciio.empad._api import _parse_xml

    try:
        _, info = _parse_xml(os.fspath(path))
    except Exception as exc:  # the XML parser's and RosettaSciIO's own errors
        raise InvalidDataError(f"cannot read {path.name} as an EMPAD .xml: {exc}") from None
    raw = resolve_inside(str(info["raw_filename"]), path, f"raw file of {path.name}")
    frames = info.get("series_count") or int(info.get("scan_y", 0)) * int(info.get("scan_x", 0))
    expected = int(frames) * int(info["raw_height"]) * int(info["width"]) * 4
    if raw.stat().st_size < expected:
        raise InvalidDataError(
            f"{raw.name} is {raw.stat().st_size} bytes; {path.name} declares {frames} frames "
            f"({expected} bytes): the file is cut or the .xml belongs to another scan."
        )


#: Bytes per pixel of each Merlin counter depth (bits): 1 and 6 bits in U08, 12 in U16,
#: 24 in U32 frames.
_MIB_DEPTH_BYTES = {1: 1, 6: 1, 12: 2, 24: 4}


def check_mib_depth(path: Path, data, inst) -> None:
    """The pixels' type must be the one the ``.hdr``'s counter depth records: 12-bit data
    under a 6-bit header would be given a saturation count of 63 it never had."""
    if "saturation_count" not in inst:
        return
    bits = int(round(math.log2(float(inst.value("saturation_count")) + 1)))
    expected = _MIB_DEPTH_BYTES.get(bits)
    itemsize = np.dtype(data.dtype).itemsize
    if expected is not None and itemsize != expected:
        raise InvalidDataError(
            f"{path.with_suffix('.hdr').name} records a {bits}-bit counter depth but the "
            f"frames of {path.name} hold {8 * itemsize}-bit pixels: the header belongs to "
            "another acquisition."
        )
