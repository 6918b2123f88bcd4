"""Checks that keep the 4D readers inside their dataset and their headers honest.

Data a file points at (HDF5 external raw storage, virtual-dataset sources, the external
links of a DECTRIS master, an EMPAD ``.xml``'s raw file) must be a regular file in the
dataset's folder, never elsewhere nor a device; a size a header declares is checked
against what the file can hold before a reader allocates or Dask builds a graph; a
header must agree with its data (a Merlin ``.hdr``'s counter depth).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from .._files import inside_folder
from ..errors import InvalidDataError

__all__ = [
    "MAX_DECLARED_BYTES",
    "check_declared_size",
    "check_empad_raw",
    "check_link",
    "check_mib_depth",
    "confined_dataset",
]


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
    """A file an HDF5 file points at must be a regular file in the dataset's folder."""
    if target in (".", ""):  # the file itself
        return
    inside_folder(target, path.parent, what=f"{what} of {path.name}")


def check_link(path: Path, group, key: str) -> None:
    import h5py

    link = group.get(key, getlink=True)
    if isinstance(link, h5py.ExternalLink):
        _inside(path, link.filename, "linked file")


def confined_dataset(path: Path, h5file, name: str, obj):
    """``obj``, refused when its bytes would come from outside the dataset's folder:
    external raw storage, virtual-dataset sources and external links may only name regular
    files beside (or below) the file. External raw storage is then mapped here, relative
    to that folder (HDF5 itself would look relative to the working directory)."""
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
    raw = inside_folder(
        os.fsdecode(target), path.parent, what=f"external raw storage of {path.name}"
    )
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
    folder (never ``../``, an absolute path elsewhere or a device), as long as the scan
    the ``.xml`` declares."""
    from rsciio.empad._api import _parse_xml

    try:
        _, info = _parse_xml(os.fspath(path))
    except Exception as exc:  # the XML parser's and RosettaSciIO's own errors
        raise InvalidDataError(f"cannot read {path.name} as an EMPAD .xml: {exc}") from None
    raw = inside_folder(str(info["raw_filename"]), path.parent, what=f"raw file of {path.name}")
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
