"""The overfocus calibration images of a 4D STEM dataset, computed in one pass.

Five images (DESIGN.md):

``point``
    One detector pixel as a function of scan position, shape of the scan.
``selected``
    The frame recorded at scan position ``select`` mapped into scan coordinates by the
    twin, shape of the scan. Where scale, rotation and handedness are right it shows the
    same specimen, at the same place, as ``point``.
``shifted_sum``
    The sum of every frame's pixels placed at the specimen position the twin predicts,
    shape of the scan. Sharp when the twin matches the instrument.
``sum``
    The sum of all frames (``aperture_sum``) mapped as if taken at the scan centre.
``aperture_sum``
    The plain sum of all frames, shape of the detector.

Sampling. ``shifted_sum`` spreads each detector value over the four scan pixels around
its fractional target with bilinear weights (bilinear splatting, the adjoint of bilinear
interpolation); it is a sum, not normalised, so its edges, reached by fewer frames, are
darker. ``selected`` and ``sum`` are single images resampled onto the scan grid: each
scan pixel takes the bilinearly interpolated detector value that the twin maps onto it
(0 outside the detector or the bright-field disk), so they have no holes at any
magnification.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator

import numba
import numpy as np
from scipy import ndimage

from ..errors import InvalidDataError, InvalidParameterError
from .kernels import ShiftPlan, make_plan, splat_frames
from .twin import TwinParams

__all__ = ["OUTPUTS", "OverfocusAccumulator", "compute", "finish_images", "map_frame", "validate_4d"]

OUTPUTS = ("point", "selected", "shifted_sum", "sum", "aperture_sum")

#: Bytes of raw data handed to the kernel at a time (bounds memory for memmaps/Dask).
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


def check_position(name: str, pos, shape, what: str) -> tuple[int, int]:
    try:
        y, x = (int(round(float(v))) for v in pos)
    except (TypeError, ValueError):
        raise InvalidParameterError(f"{name} must be a (y, x) pair, got {pos!r}.") from None
    if not (0 <= y < shape[0] and 0 <= x < shape[1]):
        raise InvalidParameterError(
            f"{name}={tuple(pos)} is outside the {what} of shape {tuple(shape)}."
        )
    return y, x


def map_frame(frame: np.ndarray, params: TwinParams, scan_shape, at) -> np.ndarray:
    """Resample one detector image onto the scan grid as recorded at scan position ``at``.

    Each scan pixel ``t`` takes the detector value at ``c + M⁻¹ (t − at)``, bilinearly
    interpolated; pixels that map outside the detector (or outside the bright-field disk
    when ``semiconv`` is set) are 0.

    Parameters
    ----------
    frame : ndarray, shape (dy, dx)
    params : TwinParams
    scan_shape : (int, int)
    at : (float, float)
        Scan position (scan pixels) the frame is taken to be recorded at.
    """
    frame = np.asarray(frame, dtype=np.float64)
    mask = params.bright_field_mask(frame.shape)
    if mask is not None:
        frame = np.where(mask, frame, 0.0)
    inverse = np.linalg.inv(params.matrix)
    offset = params.center - inverse @ np.asarray(at, dtype=float)
    return ndimage.affine_transform(frame, inverse, offset=offset, output_shape=tuple(scan_shape),
                                    order=1, mode="constant", cval=0.0)


class OverfocusAccumulator:
    """Bookkeeping of one pass: feed it blocks of frames, then ask for the images.

    The heavy work is :func:`~napari_emcal.overfocus.kernels.splat_frames`; this class
    owns the accumulators and picks ``point``/``selected`` out of the blocks it sees, so
    that the same code serves :func:`compute`, Dask blocks and LiberTEM partitions.
    """

    def __init__(self, params: TwinParams, scan_shape, detector_shape, *, select=None,
                 point=None, outputs: Iterable[str] | None = None, n_acc: int | None = None):
        if not isinstance(params, TwinParams):
            raise InvalidParameterError(
                f"params must be a TwinParams, got {type(params).__name__}."
            )
        self.params = params
        self.scan_shape = tuple(int(v) for v in scan_shape)
        self.detector_shape = tuple(int(v) for v in detector_shape)
        self.outputs = check_outputs(outputs)
        if select is None:
            select = (self.scan_shape[0] // 2, self.scan_shape[1] // 2)
        self.select = check_position("select", select, self.scan_shape, "scan")
        if point is None:
            point = (params.cy, params.cx)
        self.point = check_position("point", point, self.detector_shape, "detector")
        self._splat = "shifted_sum" in self.outputs
        self._aperture = bool({"sum", "aperture_sum"} & self.outputs)
        n_acc = n_acc or numba.get_num_threads()
        self.plan: ShiftPlan | None = (
            make_plan(params, self.scan_shape, self.detector_shape) if self._splat else None
        )
        size = self.plan.padded_size if self.plan is not None else 0
        self._shifted = np.zeros((n_acc, size))
        self._aperture_acc = np.zeros(
            (n_acc, self.detector_shape[0] * self.detector_shape[1]) if self._aperture else (n_acc, 0)
        )
        self._point = np.zeros(self.scan_shape) if "point" in self.outputs else None
        self._selected_frame: np.ndarray | None = None
        self.frames_seen = 0

    def add(self, frames, scan_y, scan_x) -> None:
        """Add a block of frames ``(n, dy, dx)`` recorded at scan positions ``(scan_y, scan_x)``."""
        frames = np.asarray(frames)
        n = frames.shape[0]
        if n == 0:
            return
        scan_y = np.asarray(scan_y, dtype=np.intp).reshape(n)
        scan_x = np.asarray(scan_x, dtype=np.intp).reshape(n)
        if self._point is not None:
            self._point[scan_y, scan_x] = frames[:, self.point[0], self.point[1]]
        if "selected" in self.outputs:
            hit = np.flatnonzero((scan_y == self.select[0]) & (scan_x == self.select[1]))
            if hit.size:
                self._selected_frame = np.array(frames[hit[0]], dtype=np.float64)
        if self._splat:
            splat_frames(_native_contiguous(frames.reshape(n, -1)), scan_y, scan_x, self.plan,
                         self._shifted, self._aperture_acc, splat=True,
                         aperture_sum=self._aperture)
        elif self._aperture:
            self._aperture_acc[0] += frames.reshape(n, -1).sum(axis=0, dtype=np.float64)
        self.frames_seen += n

    # -- results ---------------------------------------------------------------
    def shifted_sum(self) -> np.ndarray:
        return self.plan.crop(self._shifted.sum(axis=0)).copy()

    def aperture_sum(self) -> np.ndarray:
        return self._aperture_acc.sum(axis=0).reshape(self.detector_shape)

    def result(self) -> dict[str, np.ndarray]:
        """The requested images (float64)."""
        return finish_images(
            self.params, self.outputs, self.scan_shape, select=self.select,
            point_image=self._point, selected_frame=self._selected_frame,
            shifted_sum=self.shifted_sum() if self._splat else None,
            aperture_sum=self.aperture_sum() if self._aperture else None,
        )


def finish_images(params: TwinParams, outputs, scan_shape, *, select, point_image,
                  selected_frame, shifted_sum, aperture_sum) -> dict[str, np.ndarray]:
    """Turn the accumulated sums into the requested images (shared by every executor)."""
    out: dict[str, np.ndarray] = {}
    if "point" in outputs:
        out["point"] = point_image
    if "selected" in outputs:
        if selected_frame is None:
            raise InvalidDataError(f"The frame at select={select} was not among the frames processed.")
        out["selected"] = map_frame(selected_frame, params, scan_shape, select)
    if "shifted_sum" in outputs:
        out["shifted_sum"] = shifted_sum
    if "sum" in outputs:
        centre = ((scan_shape[0] - 1) / 2, (scan_shape[1] - 1) / 2)
        out["sum"] = map_frame(aperture_sum, params, scan_shape, centre)
    if "aperture_sum" in outputs:
        out["aperture_sum"] = aperture_sum
    return out


def check_outputs(outputs) -> frozenset[str]:
    if outputs is None:
        return frozenset(OUTPUTS)
    if isinstance(outputs, str):
        outputs = (outputs,)
    chosen = frozenset(outputs)
    unknown = chosen - set(OUTPUTS)
    if unknown:
        raise InvalidParameterError(
            f"Unknown output(s) {sorted(unknown)}; choose from {', '.join(OUTPUTS)}."
        )
    if not chosen:
        raise InvalidParameterError("outputs is empty: ask for at least one image.")
    return chosen


def _native_contiguous(a: np.ndarray) -> np.ndarray:
    """C-contiguous, native byte order (Numba cannot read swapped bytes)."""
    if not a.dtype.isnative:
        a = a.astype(a.dtype.newbyteorder("="))
    return np.ascontiguousarray(a)


def iter_blocks(data, block_bytes: int = BLOCK_BYTES) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Yield ``(frames (n, dy, dx), scan_y, scan_x)`` blocks of whole scan rows.

    NumPy arrays and memmaps are sliced; Dask arrays are read chunk by chunk along the
    scan axes (detector axes merged into whole frames first).
    """
    (sy, sx), (dy, dx) = validate_4d(data)
    if _is_dask(data):
        data = data.rechunk({2: -1, 3: -1})
        y_edges = np.cumsum((0,) + data.chunks[0])
        x_edges = np.cumsum((0,) + data.chunks[1])
        for i in range(len(data.chunks[0])):
            for j in range(len(data.chunks[1])):
                block = np.asarray(data.blocks[i, j].compute())
                yy, xx = np.mgrid[y_edges[i]:y_edges[i + 1], x_edges[j]:x_edges[j + 1]]
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
    import mmap

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


def _is_dask(data) -> bool:
    return type(data).__module__.startswith("dask.")


def compute(data, params: TwinParams, *, select=None, point=None, outputs=None,
            progress: Callable[[float], object] | None = None,
            executor: str | None = None) -> dict[str, np.ndarray]:
    """Compute the overfocus calibration images of a 4D STEM dataset in one pass.

    Parameters
    ----------
    data : array_like, shape (scan_y, scan_x, det_y, det_x)
        NumPy array, memmap or Dask array of any integer or float dtype and byte order.
    params : TwinParams
        The twin's parameters.
    select : (int, int), optional
        Scan position ``(sy, sx)`` of the ``selected`` frame; default the scan centre
        ``(scan_y // 2, scan_x // 2)``.
    point : (int, int), optional
        Detector pixel of the ``point`` image; default the beam centre ``(cy, cx)``
        rounded to the nearest pixel.
    outputs : iterable of str, optional
        Subset of ``OUTPUTS`` to compute; default all five.
    progress : callable, optional
        Called with the fraction done (0..1) after every block. It may raise
        :class:`~napari_emcal.errors.Cancelled` to stop the pass.
    executor : str, optional
        ``"local"`` (default: in this process, block by block), ``"inline"``,
        ``"threads"`` or a dask scheduler address, used through LiberTEM with
        :class:`~napari_emcal.overfocus.OverfocusUDF` (see :mod:`napari_emcal.engine`);
        ``data`` may then also be a file path, read by the workers.

    Returns
    -------
    dict of str to ndarray
        The requested images as float64 arrays (see the module docstring for their
        definitions and sampling).

    Raises
    ------
    InvalidDataError
        If ``data`` is not a non-empty 4D real-valued array.
    InvalidParameterError
        If ``params`` is not a :class:`TwinParams`, ``select``/``point`` lie outside the
        scan/detector, or ``outputs`` names an unknown image.
    """
    from ..engine import check_executor, run_local

    executor = check_executor(executor)
    if executor != "local" or isinstance(data, (str, os.PathLike)):
        return _compute_libertem(data, params, executor, progress, select=select, point=point,
                                 outputs=outputs)
    scan_shape, detector_shape = validate_4d(data)
    acc = OverfocusAccumulator(params, scan_shape, detector_shape, select=select, point=point,
                               outputs=outputs)
    return run_local(data, acc, progress)


def _compute_libertem(data, params, executor, progress, *, select, point, outputs):
    from ..engine import run_on_libertem
    from .udf import OverfocusUDF

    if not isinstance(params, TwinParams):
        raise InvalidParameterError(f"params must be a TwinParams, got {type(params).__name__}.")
    chosen = check_outputs(outputs)
    images = run_on_libertem(data, executor, OverfocusUDF(twin=params, select=select,
                                                          point=point), progress)
    return {name: np.asarray(images[name], dtype=np.float64) for name in OUTPUTS
            if name in chosen}
