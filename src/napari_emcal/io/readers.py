"""Lazy readers of 4D STEM files: a Dask array ``(scan_y, scan_x, det_y, det_x)`` and metadata.

Opening a file never reads its pixel data: NumPy files are memory-mapped, HDF5 datasets
wrapped by Dask, and the instrument formats read by RosettaSciIO with ``lazy=True``.

Metadata structure (``Dataset4D.metadata``, also ``layer.metadata["emcal"]``), SI units,
``None`` where the file does not say:

==========================  =========================================================
``source``                  path of the file opened
``format``                  short format name (``"npy"``, ``"mib"``, ``"hdf5"``, ...)
``scan_step``               ``[y, x]`` scan step at the specimen, m
``detector_pixel_size``     ``[y, x]`` physical detector pixel size, m
``camera_length``           m
``beam_energy``             eV
``dwell_time``              time per scan position (frame), s
``scan_shape_guessed``      True when the file did not state the scan shape
``dataset``, ``datasets``   HDF5 only: the dataset opened and all 3D/4D datasets found
``detector_max_count``      the count at which pixels saturate, when the file says
``instrument``              every value the file records, with its source
                            (:meth:`InstrumentMetadata.to_json`)
==========================  =========================================================

``Dataset4D.instrument`` holds the same values as an :class:`InstrumentMetadata`.

The shared :class:`Dataset4D` is in ``dataset4d``, the per-format readers in ``formats4d``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import dask.array as da
import numpy as np

from .._files import check_readable
from ..display import robust_limits
from ..errors import InvalidDataError, InvalidParameterError
from .confine import allowed_folders
from .dataset4d import SCAN_CHUNK, Dataset4D, _frame_chunks
from .formats4d import (
    NpyFile,
    _hdf5_candidates,
    _open_hdf5,
    _open_npy,
    _open_rsciio,
    _open_zarr,
)
from .instrument import InstrumentMetadata

__all__ = [
    "Dataset4D",
    "FORMATS",
    "guess_scan_shape",
    "holds_4d",
    "open_4d",
    "reshape_scan",
    "sample_contrast_limits",
]

#: File endings this module opens, by format name.
FORMATS = {
    "npy": (".npy",),
    "mib": (".mib", ".hdr"),
    "hdf5": (".h5", ".hdf5", ".hdf", ".nxs"),
    "blockfile": (".blo",),
    "empad": (".xml",),
    "dm": (".dm4", ".dm3"),
    "zarr": (".zarr",),
}


def format_of(path) -> str | None:
    """The format name for a path, or None if it is not a 4D format this module reads."""
    p = Path(path)
    name = p.name.lower()
    if p.is_dir():
        return (
            "zarr"
            if (p / ".zarray").exists() or (p / "zarr.json").exists() or name.endswith(".zarr")
            else None
        )
    for fmt, endings in FORMATS.items():
        if name.endswith(endings):
            return fmt
    return None


def holds_4d(path) -> bool:
    """Whether ``path`` holds 3D or 4D detector data this module opens, judged from its
    headers only (a 2D ``.npy``, an HDF5 file of images or a 2D ``.dm3`` is not claimed)."""
    fmt = format_of(path)
    if fmt is None:
        return False
    try:
        if fmt == "npy":
            return NpyFile(path).ndim in (3, 4)
        if fmt == "hdf5":
            import h5py

            with h5py.File(path, "r") as h5file:
                if "entry/data" in h5file and "entry/instrument/detector" in h5file:
                    return True
                return bool(_hdf5_candidates(h5file))
        if fmt == "zarr":
            import zarr

            return zarr.open(os.fspath(path), mode="r").ndim in (3, 4)
        if fmt == "dm":
            from rsciio.digitalmicrograph import file_reader

            return any(
                np.ndim(s["data"]) in (3, 4) for s in file_reader(os.fspath(path), lazy=True)
            )
    except Exception:
        return False
    return True  # .mib/.hdr, .blo, EMPAD .xml: always 4D


def guess_scan_shape(n_frames: int) -> tuple[int, int]:
    """The most plausible 2D scan for ``n_frames`` frames: the most square factorisation."""
    if n_frames <= 0:
        raise InvalidDataError("No frames to arrange into a scan.")
    best = (1, n_frames)
    for ny in range(1, int(math.isqrt(n_frames)) + 1):
        if n_frames % ny == 0:
            best = (ny, n_frames // ny)
    return best


def reshape_scan(data: da.Array, scan_shape) -> da.Array:
    """Rearrange the frames of a (scan..., dy, dx) array into ``scan_shape`` (lazily).

    NumPy arrays are wrapped by Dask first, so nothing is copied.
    """
    if not isinstance(data, da.Array):
        data = da.from_array(data, chunks=(1,) * (data.ndim - 2) + tuple(data.shape[-2:]))
    scan_shape = _scan_shape(scan_shape)
    n = int(np.prod(data.shape[:-2]))
    if len(scan_shape) != 2 or min(scan_shape) <= 0 or scan_shape[0] * scan_shape[1] != n:
        raise InvalidDataError(
            f"Cannot arrange {n} frames into a scan of {scan_shape}: the product must be {n}."
        )
    flat = data.reshape((n,) + tuple(data.shape[-2:]))
    out = flat.reshape(scan_shape + tuple(data.shape[-2:]))
    return out.rechunk(_frame_chunks(out.shape))


def _scan_shape(scan_shape) -> tuple[int, ...]:
    """``scan_shape`` as whole numbers ((16, 16), [16, 16] or "16x16"), or
    InvalidParameterError saying what is expected."""
    if isinstance(scan_shape, str):
        scan_shape = scan_shape.lower().replace("×", "x").replace(",", "x").split("x")
    try:
        values = tuple(float(v) for v in scan_shape)
    except (TypeError, ValueError):
        values = ()
    if len(values) != 2 or not all(np.isfinite(v) and v == int(v) and v > 0 for v in values):
        raise InvalidParameterError(
            f"scan_shape must be two positive whole numbers (ny, nx); got {scan_shape!r}"
        )
    return tuple(int(v) for v in values)


def sample_contrast_limits(data, n_frames: int = 8) -> tuple[float, float]:
    """Contrast limits from a few frames spread over the scan (never the whole array)."""
    sy, sx = data.shape[:2]
    idx = np.linspace(0, sy * sx - 1, min(n_frames, sy * sx)).astype(int)
    frames = [np.asarray(data[i // sx, i % sx]) for i in idx]
    values = np.concatenate([f.ravel() for f in frames]).astype(np.float64)
    return robust_limits(values, (0.5, 99.9))


def open_4d(path, *, scan_shape=None, dataset: str | None = None, allow_dirs=()) -> Dataset4D:
    """Open a 4D STEM file lazily.

    Parameters
    ----------
    path : str or Path
        ``.npy``, Merlin ``.mib``/``.hdr``, HDF5 (generic or DECTRIS ARINA master),
        NanoMegas ``.blo``, EMPAD ``.xml``, ``.dm4``/``.dm3`` or a Zarr directory.
    scan_shape : (int, int), optional
        Arrange the frames into this scan (overrides what the file says or the guess).
    dataset : str, optional
        For HDF5 files with several 3D/4D datasets: the one to open (default the largest).
    allow_dirs : path or sequence of paths, optional
        Folders besides the file's own from which the data it points at (HDF5 external
        storage, virtual-dataset sources, linked files, an EMPAD raw file) may be read;
        regular files only, never devices (:func:`napari_emcal.io.confine.allowed_folders`).

    Raises
    ------
    InvalidDataError
        If the file is missing, of an unknown format, truncated or corrupt, holds no
        3D/4D dataset, or points at data outside its folder and ``allow_dirs``.
    InvalidParameterError
        If a name in ``allow_dirs`` is not an existing folder.
    """
    path = Path(path)
    check_readable(path)
    fmt = format_of(path)
    if fmt is None:
        raise InvalidDataError(
            f"{path.name}: not a 4D STEM format napari-emcal reads "
            f"({', '.join(e for es in FORMATS.values() for e in es)})."
        )
    reader = {"npy": _open_npy, "hdf5": _open_hdf5, "zarr": _open_zarr}.get(fmt, _open_rsciio)
    try:
        with allowed_folders(allow_dirs):
            ds = reader(path, fmt, dataset=dataset)
    except (InvalidDataError, InvalidParameterError):
        raise
    except Exception as exc:  # the libraries' own errors for corrupt or truncated files
        raise InvalidDataError(f"Could not read {path.name} as {fmt}: {exc}") from exc
    if ds.instrument is None:
        ds.instrument = InstrumentMetadata(path)
    ds = _arrange(ds, scan_shape)
    _legacy_keys(ds)
    return ds


def _legacy_keys(ds: Dataset4D) -> None:
    """The flat keys the tools read (SI), from the instrument values; and those values
    themselves, with their sources, for the layer."""
    inst, metadata = ds.instrument, ds.metadata
    if "scan_step" in inst:
        metadata["scan_step"] = list(inst.value("scan_step"))
    pixel = inst.value("detector_pixel_size")
    if pixel is not None:
        metadata["detector_pixel_size"] = list(pixel) if np.ndim(pixel) else [pixel, pixel]
    for name in ("camera_length", "beam_energy", "dwell_time"):
        if name in inst:
            metadata[name] = float(inst.value(name))
    if "saturation_count" in inst:
        metadata["detector_max_count"] = float(inst.value("saturation_count"))
    for note in inst.notes:
        if note not in ds.notes:
            ds.notes.append(note)
    metadata["instrument"] = inst.to_json()


def _arrange(ds: Dataset4D, scan_shape) -> Dataset4D:
    data = ds.data
    if data.ndim not in (3, 4):
        raise InvalidDataError(
            f"{Path(ds.metadata['source']).name}: expected 3D or 4D data, got shape {data.shape}."
        )
    inst = ds.instrument
    if scan_shape is not None:
        data = reshape_scan(data, scan_shape)
        ds.metadata["scan_shape_guessed"] = False
        inst.set("scan_shape", _scan_shape(scan_shape), "typed by the user")
    elif "scan_shape" in inst and inst.value("scan_shape") != tuple(data.shape[:2]):
        data = reshape_scan(data, inst.value("scan_shape"))
        ds.metadata["scan_shape_guessed"] = False
    elif data.ndim == 3 or ds.metadata["scan_shape_guessed"]:
        guess = guess_scan_shape(int(np.prod(data.shape[:-2])))
        data = reshape_scan(data, guess)
        ds.metadata["scan_shape_guessed"] = True
        inst.set("scan_shape", guess, "guessed: the most square arrangement of the frames")
        ds.notes.append(
            f"{Path(ds.metadata['source']).name}: the file does not state the scan shape; "
            f"opened as {guess[0]} x {guess[1]}. Change it with 'Scan shape' in the overfocus "
            "widget or open_4d(..., scan_shape=(ny, nx))."
        )
    elif (
        any(len(c) == 1 and data.shape[i] > SCAN_CHUNK for i, c in enumerate(data.chunks[:2]))
        or len(data.chunks[2]) > 1
        or len(data.chunks[3]) > 1
    ):
        data = data.rechunk(_frame_chunks(data.shape))
    inst.set(
        "scan_shape",
        tuple(int(v) for v in data.shape[:2]),
        inst.file_source("data shape"),
        replace=False,
    )
    ds.data = data
    return ds
