"""The per-format 4D readers behind :func:`napari_emcal.io.readers.open_4d`: NumPy
(memory-mapped), Zarr, HDF5 (generic and DECTRIS ARINA master) and the instrument formats
RosettaSciIO reads lazily (Merlin, NanoMegas blockfile, EMPAD, Digital Micrograph).

Pure Python/NumPy: no Qt, no napari.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np

from .._files import check_readable, map_npy
from ..errors import InvalidDataError
from ..units import dimension, to_si, unit_of
from .confine import (
    check_declared_size,
    check_empad_raw,
    check_link,
    check_mib_depth,
    confined_dataset,
)
from .dataset4d import SCAN_CHUNK, Dataset4D, _frame_chunks, empty_metadata
from .instrument import (
    InstrumentMetadata,
    from_original_metadata,
    from_rsciio_signal,
    merlin_header,
)

__all__ = ["NpyFile"]


class NpyFile:
    """A ``.npy`` file as an array-like that reads only what is indexed.

    Dask's ``from_array`` copies a NumPy array (a memmap included) into its chunks when the
    graph is built, which reads the whole file; this wrapper is not an ndarray, so nothing
    is read until a chunk is computed, and each read maps the file only for as long as it
    copies the slice (resident memory stays at the chunks in use). Picklable: a worker
    opens the file itself.
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        header = map_npy(self.path)
        self.shape, self.dtype = tuple(header.shape), header.dtype
        self.ndim = len(self.shape)
        del header

    def __getitem__(self, key):
        mapped = np.load(self.path, mmap_mode="r")
        try:
            return np.array(mapped[key])
        finally:
            del mapped

    def token(self) -> str:
        """A name for Dask that changes when the file does (no hashing of its contents)."""
        stat = os.stat(self.path)
        return f"npy-{abs(hash((self.path, stat.st_mtime_ns, stat.st_size))):x}"


# Every reader: (path, format name, *, dataset=None) -> Dataset4D; ``dataset`` names the
# array of a file that holds several (HDF5), the others have one.
def _open_npy(path: Path, fmt: str, *, dataset: str | None = None) -> Dataset4D:
    array = NpyFile(path)
    chunks = _frame_chunks(array.shape) if array.ndim == 4 else (SCAN_CHUNK**2,) + array.shape[1:]
    data = da.from_array(array, chunks=chunks, name=array.token(), asarray=False)
    return Dataset4D(data, empty_metadata(path, fmt))


def _open_zarr(path: Path, fmt: str, *, dataset: str | None = None) -> Dataset4D:
    data = da.from_zarr(os.fspath(path))
    return Dataset4D(data, empty_metadata(path, fmt))


def _hdf5_candidates(h5file) -> list[tuple[str, tuple, Any]]:
    import h5py

    found = []

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset) and obj.ndim in (3, 4) and obj.dtype.kind in "iuf":
            found.append((name, obj.shape, obj))

    h5file.visititems(visit)
    # external links (ARINA-style master files) are not visited by visititems
    for group_name in ("entry/data",):
        if group_name in h5file:
            for key in h5file[group_name]:
                obj = h5file[group_name].get(key)
                if isinstance(obj, h5py.Dataset) and obj.ndim in (3, 4):
                    name = f"{group_name}/{key}"
                    if all(n != name for n, _, _ in found):
                        found.append((name, obj.shape, obj))
    return found


def _open_hdf5(path: Path, fmt: str, *, dataset: str | None = None) -> Dataset4D:
    import h5py
    import hdf5plugin  # noqa: F401  (registers bitshuffle/LZ4 filters for DECTRIS files)

    h5file = h5py.File(path, "r")
    try:  # the lazy array reads from the open file; a refusal closes it
        return _hdf5_dataset(path, fmt, dataset, h5file)
    except BaseException:
        h5file.close()
        raise


def _hdf5_dataset(path: Path, fmt: str, dataset: str | None, h5file) -> Dataset4D:
    if "entry/data" in h5file and "entry/instrument/detector" in h5file:
        return _open_dectris_master(path, h5file)
    candidates = _hdf5_candidates(h5file)
    if not candidates:
        raise InvalidDataError(
            f"{path.name} holds no 3D or 4D numeric dataset: nothing to open as 4D STEM."
        )
    notes = []
    if dataset is not None:
        chosen = [c for c in candidates if c[0] == dataset.strip("/")]
        if not chosen:
            raise InvalidDataError(
                f"{path.name} has no 3D/4D dataset {dataset!r}; found: "
                f"{', '.join(c[0] for c in candidates)}."
            )
        name, shape, obj = chosen[0]
    else:
        name, shape, obj = max(candidates, key=lambda c: int(np.prod(c[1])))
        if len(candidates) > 1:
            notes.append(
                f"{path.name} holds several 3D/4D datasets; opened the largest, '{name}'. "
                f"Others: {', '.join(c[0] for c in candidates if c[0] != name)}."
            )
    obj = confined_dataset(path, h5file, name, obj)
    check_declared_size(path, shape, obj.dtype)
    chunks = getattr(obj, "chunks", None)  # an h5py dataset's, or None for a mapped raw file
    if chunks is None or obj.ndim == 4:
        chunks = _frame_chunks(shape) if obj.ndim == 4 else (SCAN_CHUNK**2,) + shape[1:]
    data = da.from_array(obj, chunks=chunks)
    metadata = empty_metadata(path, fmt)
    metadata["dataset"] = name
    metadata["datasets"] = [c[0] for c in candidates]
    return Dataset4D(data, metadata, notes, _hdf5_instrument(path, h5file, name))


def _hdf5_instrument(path: Path, h5file, name: str) -> InstrumentMetadata:
    """What a generic HDF5 file records: the scan step stored with the scan axes (EMD-style
    ``dim1``/``dim2`` datasets with a ``units`` attribute), vendor tags stored as small
    scalar datasets or attributes (FEI/TIA ``Camera length_m``, ``High tension_kV``...),
    and a Merlin header kept as text."""
    inst = InstrumentMetadata(path)
    group = name.rsplit("/", 1)[0] if "/" in name else ""
    step = []
    for axis in ("dim1", "dim2"):
        key = f"{group}/{axis}" if group else axis
        if key in h5file and h5file[key].ndim == 1 and h5file[key].shape[0] > 1:
            values = np.asarray(h5file[key][:2], dtype=float)
            unit = unit_of(_attr_text(h5file[key].attrs.get("units")) or "")
            if unit and dimension(unit) == "length" and values[1] != values[0]:
                step.append((to_si(abs(values[1] - values[0]), unit), key, unit))
    if len(step) == 2:
        inst.set_from_file(
            "scan_step",
            (step[0][0], step[1][0]),
            f"{step[0][1]}, {step[1][1]} (spacing, {step[0][2]})",
        )
    tags: dict[str, Any] = {}
    header_text = None

    def visit(key, obj):
        nonlocal header_text
        for attr, value in obj.attrs.items():
            text = _attr_text(value)
            if attr == "string" and text and text.startswith("HDR"):
                header_text = (f"{key}.string", text)
            elif np.ndim(value) == 0:
                tags[f"{key}.{attr}"] = value
        if getattr(obj, "shape", None) == () and getattr(obj, "dtype", None) is not None:
            tags[key.replace("/", ".")] = obj[()]

    h5file.visititems(visit)
    from_original_metadata(tags, path, into=inst)
    if header_text is not None:
        header = merlin_header(header_text[1], path, key_prefix=f"{header_text[0]}: ")
        for key in ("saturation_count", "instrument"):
            if key in header:
                inst.set(key, header.value(key), header.source(key), replace=False)
    return inst


def _attr_text(value) -> str | None:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, np.ndarray) and value.shape == () and value.dtype.kind in "SU":
        return _attr_text(value.item())
    return value if isinstance(value, str) else None


def _open_dectris_master(path: Path, h5file) -> Dataset4D:
    """DECTRIS (ARINA, EIGER) NeXus master file whose frames live in linked data files."""
    group = h5file["entry/data"]
    parts = []
    for key in sorted(group):
        check_link(path, group, key)
        try:
            obj = group[key]
        except KeyError:  # a linked data file that is missing
            raise InvalidDataError(
                f"{path.name}: linked data file for '{key}' is missing; keep the "
                "*_data_*.h5 files beside the master file."
            ) from None
        obj = confined_dataset(path, h5file, f"entry/data/{key}", obj)
        check_declared_size(path, obj.shape, obj.dtype, linked=True)
        parts.append(da.from_array(obj, chunks=(SCAN_CHUNK**2,) + obj.shape[1:]))
    if not parts:
        raise InvalidDataError(f"{path.name}: the master file links no data.")
    det = h5file["entry/instrument/detector"]
    inst = InstrumentMetadata(path)
    where = "entry/instrument/detector/"

    def value(key):
        return float(det[key][()]) if key in det else None

    size_y, size_x = value("y_pixel_size"), value("x_pixel_size")
    if size_y and size_x:
        inst.set_from_file(
            "detector_pixel_size", (size_y, size_x), f"{where}y_pixel_size, x_pixel_size"
        )
    distance = value("detector_distance")
    if distance:  # 0 means "not entered"
        inst.set_from_file("camera_length", distance, where + "detector_distance")
    else:
        inst.note(f"{path.name}: detector_distance is 0 (not entered): camera length unknown")
    for name, key in (
        ("beam_energy", "detectorSpecific/photon_energy"),
        ("dwell_time", "frame_time"),
        ("exposure_time", "count_time"),
        ("saturation_count", "saturation_value"),
    ):
        if value(key) is not None:
            inst.set_from_file(name, value(key), where + key)
    if "description" in det:
        inst.set_from_file(
            "instrument", _attr_text(det["description"][()]) or "DECTRIS", where + "description"
        )
    metadata = empty_metadata(path, "dectris")
    metadata["scan_shape_guessed"] = True
    return Dataset4D(da.concatenate(parts, axis=0), metadata, instrument=inst)


def _open_rsciio(path: Path, fmt: str, *, dataset: str | None = None) -> Dataset4D:
    import importlib

    module = {
        "mib": "rsciio.quantumdetector",
        "blockfile": "rsciio.blockfile",
        "empad": "rsciio.empad",
        "dm": "rsciio.digitalmicrograph",
    }[fmt]
    if fmt == "mib" and path.suffix.lower() == ".hdr":
        path = path.with_suffix(".mib")
    reader = importlib.import_module(module).file_reader
    check_readable(path)
    if fmt == "empad":
        check_empad_raw(path)
    signals = reader(os.fspath(path), lazy=True)
    found = signals
    signals = [s for s in signals if getattr(s["data"], "ndim", 0) in (3, 4)]
    if not signals:
        shapes = [tuple(getattr(s["data"], "shape", ())) for s in found]
        if shapes and all(len(shape) == 2 for shape in shapes):
            raise InvalidDataError(
                f"{path.name} holds no 3D or 4D data, only a single frame {shapes[0]}: a "
                "single image or diffraction pattern, or a file cut after its first frame."
            )
        raise InvalidDataError(f"{path.name} holds no 3D or 4D data.")
    signal = max(signals, key=lambda s: int(np.prod(s["data"].shape)))
    if fmt == "blockfile":
        _check_blockfile_size(path, signal)
    data = signal["data"]
    if not isinstance(data, da.Array):
        data = da.from_array(data, chunks="auto")
    metadata = empty_metadata(path, fmt)
    inst = from_rsciio_signal(signal, path)
    if fmt == "mib":
        header = signal.get("original_metadata", {}).get("hdr_file") or {}
        lines = "\n".join(f"{k}: {v}" for k, v in header.items())
        merlin = merlin_header(lines, path.with_suffix(".hdr"))
        inst.update(merlin)  # the frames' own UTC time stamp stays before the .hdr's local one
        # the scan shape: written in the .hdr (ScanX/ScanY) or else guessed
        metadata["scan_shape_guessed"] = "scan_shape" not in inst
        data = _check_mib_frames(path, data, merlin.frames_announced)
        check_mib_depth(path, data, inst)
        # RosettaSciIO turns Merlin frames upside down (np.flip on the detector rows);
        # LiberTEM's reader and a live Merlin stream give them as the detector reads them
        # out. Undone here, so that a calibration's flip_y means the same for a file and a
        # stream and passes unchanged to LiberTEM (a flip of the detector's y axis is a
        # change of handedness).
        data = data[..., ::-1, :]
        exposure = (signal.get("original_metadata", {}).get("mib_properties") or {}).get("exposure")
        if exposure:
            inst.set_from_file(
                "exposure_time",
                to_si(float(exposure), "ms"),
                "frame header: shutter time (ms)",
                replace=False,
            )
    return Dataset4D(data, metadata, instrument=inst)


def _check_blockfile_size(path: Path, signal) -> None:
    """A ``.blo`` must be as long as its header says (frames of DP_SZ² values plus a 6-byte
    frame header each, after Data_offset_2): a cut file is refused here, not when a pass
    reads past its end."""
    header = (signal.get("original_metadata") or {}).get("blockfile_header") or {}
    try:
        frames = int(header["NX"]) * int(header["NY"])
        frame_bytes = int(header["DP_SZ"]) ** 2 * np.dtype(signal["data"].dtype).itemsize + 6
        expected = int(header["Data_offset_2"]) + frames * frame_bytes
    except (KeyError, TypeError, ValueError):
        return
    size = path.stat().st_size
    if size < expected:
        raise InvalidDataError(
            f"{path.name} is cut: {size} bytes, its header announces {frames} frames "
            f"({expected} bytes). Copy the file again."
        )


def _check_mib_frames(path: Path, data, announced: int | None):
    """A ``.mib`` must hold the frames its ``.hdr`` announces: a cut file is refused, never
    silently reshaped into a smaller scan."""
    found = int(np.prod(data.shape[:-2]))
    size = path.stat().st_size
    if announced == 0:
        raise InvalidDataError(
            f"{path.with_suffix('.hdr').name} announces 0 frames but {path.name} holds "
            f"{found}: the header belongs to another (aborted) acquisition."
        )
    if announced and found != announced:
        if found < announced:
            raise InvalidDataError(
                f"{path.name} is truncated: {path.with_suffix('.hdr').name} announces "
                f"{announced} frames, the file holds {found}. Copy the file again from the "
                "acquisition computer."
            )
        raise InvalidDataError(
            f"{path.name} holds {found} frames but {path.with_suffix('.hdr').name} announces "
            f"{announced}: the header belongs to another acquisition, or the file was joined."
        )
    if found and size % found:
        raise InvalidDataError(
            f"{path.name} ends in the middle of a frame ({size} bytes is not a whole number "
            f"of its {found} frames): the file is cut. Copy it again."
        )
    return data
