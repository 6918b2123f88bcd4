"""Reading a 4D STEM dataset block by block, whatever holds it (NumPy, memmap, Dask).

No tool knowledge: a block is ``(frames (n, dy, dx), scan_y, scan_x)``, whole scan rows
where the storage allows it, and the memory of a pass over a file larger than RAM stays at
one block.
"""

from __future__ import annotations

import mmap
from collections.abc import Callable, Iterator

import numpy as np

from ..errors import InvalidDataError, InvalidParameterError

__all__ = [
    "BLOCK_BYTES",
    "is_dask",
    "iter_blocks",
    "native_contiguous",
    "reduce_data",
    "validate_4d",
]

#: Bytes of raw data handed to a kernel at a time (bounds memory for memmaps/Dask).
BLOCK_BYTES = 64 * 2**20


def validate_4d(data) -> tuple[tuple[int, int], tuple[int, int]]:
    """Check that ``data`` is a non-empty 4D real-valued array; return (scan, detector) shapes.

    Raises
    ------
    InvalidDataError
        On the wrong dimensionality, an empty array or a non-numeric dtype.
    """
    shape = getattr(data, "shape", None)
    dtype = getattr(data, "dtype", None)
    if shape is None or dtype is None:
        raise InvalidDataError(
            f"Expected a 4D array (numpy, memmap or Dask), got {type(data).__name__}."
        )
    if len(shape) != 4:
        raise InvalidDataError(
            f"Expected a 4D STEM array data[scan_y, scan_x, det_y, det_x], got "
            f"{len(shape)}D with shape {tuple(shape)}. Reshape the frames into a scan "
            "(e.g. data.reshape(ny, nx, dy, dx)) first."
        )
    if min(shape) == 0:
        raise InvalidDataError(f"The 4D array is empty: shape {tuple(shape)}.")
    if not (np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)):
        raise InvalidDataError(
            f"Expected integer or floating-point detector values, got dtype {dtype}."
        )
    return (int(shape[0]), int(shape[1])), (int(shape[2]), int(shape[3]))


def is_dask(data) -> bool:
    """Whether ``data`` is a Dask array (checked without importing Dask)."""
    return type(data).__module__.startswith("dask.")


def native_contiguous(a: np.ndarray) -> np.ndarray:
    """C-contiguous, native byte order (Numba cannot read swapped bytes), float16 widened
    to float32 (Numba has no float16), one block at a time."""
    if a.dtype == np.float16:
        a = a.astype(np.float32)
    if not a.dtype.isnative:
        a = a.astype(a.dtype.newbyteorder("="))
    return np.ascontiguousarray(a)


def iter_blocks(
    data, block_bytes: int | None = None
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Yield ``(frames (n, dy, dx), scan_y, scan_x)`` blocks of whole scan rows.

    NumPy arrays and memmaps are sliced (a whole-file memmap is read with file reads);
    Dask arrays are read chunk by chunk along the scan axes (detector axes merged into
    whole frames first). ``block_bytes`` bounds a block (default :data:`BLOCK_BYTES`).
    """
    (sy, sx), (dy, dx) = validate_4d(data)
    block_bytes = BLOCK_BYTES if block_bytes is None else block_bytes
    if is_dask(data):
        data = data.rechunk({2: -1, 3: -1})
        y_edges = np.cumsum((0,) + data.chunks[0])
        x_edges = np.cumsum((0,) + data.chunks[1])
        for i in range(len(data.chunks[0])):
            for j in range(len(data.chunks[1])):
                block = np.asarray(data.blocks[i, j].compute())
                yy, xx = np.mgrid[y_edges[i] : y_edges[i + 1], x_edges[j] : x_edges[j + 1]]
                yield block.reshape(-1, dy, dx), yy.ravel(), xx.ravel()
        return
    row_bytes = sx * dy * dx * np.dtype(data.dtype).itemsize
    rows = max(1, block_bytes // max(row_bytes, 1))
    read = _file_reader(data, row_bytes)
    for y0 in range(0, sy, rows):
        y1 = min(sy, y0 + rows)
        block = read(y0, y1) if read is not None else np.asarray(data[y0:y1])
        yy, xx = np.mgrid[y0:y1, 0:sx]
        yield block.reshape(-1, dy, dx), yy.ravel(), xx.ravel()


def _file_reader(data, row_bytes: int):
    """For a C-ordered memmap of a whole file: read rows with plain file reads.

    Slicing a memmap maps the file's pages into this process, and they count as resident
    memory until the mapping goes; reading a block into a fresh array keeps the memory of
    a pass over a file larger than RAM at one block.
    """
    if not isinstance(data, np.memmap) or not data.flags.c_contiguous:
        return None
    filename, mapping = getattr(data, "filename", None), getattr(data, "_mmap", None)
    if not filename or mapping is None:
        return None
    # where data[0] lies in the file (the array may be a slice of the mapping)
    mapped_from = data.offset - data.offset % mmap.ALLOCATIONGRANULARITY
    mapping_address = np.frombuffer(mapping, dtype=np.uint8).ctypes.data
    offset = mapped_from + (data.ctypes.data - mapping_address)
    shape = data.shape

    def read(y0, y1):
        with open(filename, "rb") as stream:
            stream.seek(offset + y0 * row_bytes)
            count = (y1 - y0) * shape[1] * shape[2] * shape[3]
            block = np.fromfile(stream, dtype=data.dtype, count=count)
        return block.reshape((y1 - y0,) + shape[1:])

    return read


def check_factor(name: str, value) -> int:
    """``value`` as a whole number >= 1 (a binning or a stride), or InvalidParameterError."""
    if int(value) != value or value < 1:
        raise InvalidParameterError(f"{name} must be a whole number >= 1, got {value}.")
    return int(value)


def reduce_data(
    data,
    detector_bin: int = 1,
    scan_stride: int = 1,
    *,
    progress: Callable[[float], object] | None = None,
) -> np.ndarray:
    """Keep every ``scan_stride``-th scan position and sum ``detector_bin`` x ``detector_bin``
    detector pixels.

    Reads only the scan positions kept, block by block (NumPy, memmap or Dask data).
    Detector edges that do not fill a whole bin are dropped.

    Parameters
    ----------
    data : array_like (scan_y, scan_x, det_y, det_x)
    detector_bin : int
        Detector pixels summed along each axis.
    scan_stride : int
        Scan positions skipped along each axis (1 keeps them all).
    progress : callable, optional
        Called with the fraction done (0..1] after each block; it may raise
        :class:`~napari_emcal.errors.Cancelled` to stop.

    Returns
    -------
    ndarray, float32, shape ``(ceil(sy / scan_stride), ceil(sx / scan_stride), dy // b, dx // b)``
    """
    b = check_factor("detector_bin", detector_bin)
    s = check_factor("scan_stride", scan_stride)
    (sy, sx), (dy, dx) = validate_4d(data)
    dy, dx = (dy // b) * b, (dx // b) * b
    if dy == 0 or dx == 0:
        raise InvalidParameterError(
            f"detector_bin={b} is larger than the detector {data.shape[2:]}."
        )
    sub = data[::s, ::s, :dy, :dx]
    out = np.empty(sub.shape[:2] + (dy // b, dx // b), np.float32)
    total = sub.shape[0] * sub.shape[1]
    done = 0
    for frames, yy, xx in iter_blocks(sub):
        frames = frames.astype(np.float32, copy=False)
        if b > 1:
            frames = frames.reshape(len(frames), dy // b, b, dx // b, b).sum(axis=(2, 4))
        out[yy, xx] = frames
        done += len(frames)
        if progress is not None:
            progress(done / total)
    return out
