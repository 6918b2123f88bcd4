"""The overfocus calibration images of a 4D STEM dataset, computed in one pass.

Five images (docs/conventions.md):

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

Descan. When the twin has a descan (the beam walks on the detector), every frame is first
resampled so the beam sits where it is at the scan centre
(:func:`~napari_emcal.engine.descan.compensate_frames`, bilinear); the five images are
then those of the compensated frames: ``point`` follows the beam, ``aperture_sum`` is the
sum of compensated frames. With a zero descan the frames are used as they are (no cost).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numba
import numpy as np
from scipy import ndimage

from ..engine import Buffer, FramePass, native_contiguous, run_pass
from ..engine.descan import compensate_frames, descan_shifts
from ..errors import InvalidDataError, InvalidParameterError
from .kernels import make_plan, splat_frames
from .twin import TwinParams

__all__ = ["OUTPUTS", "OverfocusPass", "compute", "finish_images", "map_frame"]

OUTPUTS = ("point", "selected", "shifted_sum", "sum", "aperture_sum")


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
    offset = params.centre - inverse @ np.asarray(at, dtype=float)
    return ndimage.affine_transform(
        frame,
        inverse,
        offset=offset,
        output_shape=tuple(scan_shape),
        order=1,
        mode="constant",
        cval=0.0,
    )


class OverfocusPass(FramePass):
    """The overfocus pass as the engine runs it (in this process or as a LiberTEM UDF).

    The heavy work is :func:`~napari_emcal.overfocus.kernels.splat_frames`; the pass
    declares the accumulators and picks ``point``/``selected`` out of the blocks it sees.

    Parameters
    ----------
    params : TwinParams
    select, point, outputs
        As for :func:`compute`.
    n_acc : int, optional
        Shifted-sum accumulators filled in parallel (default: Numba's thread count).
    """

    def __init__(
        self,
        params: TwinParams,
        *,
        select=None,
        point=None,
        outputs: Iterable[str] | None = None,
        n_acc: int | None = None,
    ):
        if not isinstance(params, TwinParams):
            raise InvalidParameterError(
                f"params must be a TwinParams, got {type(params).__name__}."
            )
        self.params = params
        self.outputs = check_outputs(outputs)
        self.select, self.point = select, point
        self.splat = "shifted_sum" in self.outputs
        self.aperture = bool({"sum", "aperture_sum"} & self.outputs)
        self.n_acc = int(n_acc or numba.get_num_threads())

    def _positions(self, scan_shape, detector_shape):
        select = self.select
        if select is None:
            select = (scan_shape[0] // 2, scan_shape[1] // 2)
        point = (self.params.cy, self.params.cx) if self.point is None else self.point
        return (
            check_position("select", select, scan_shape, "scan"),
            check_position("point", point, detector_shape, "detector"),
        )

    def _plan(self, scan_shape, detector_shape):
        """The shift plan for these shapes, made once (buffers, prepare and every LiberTEM
        merge ask for it)."""
        key = (tuple(scan_shape), tuple(detector_shape))
        cache = self.__dict__.setdefault("_plans", {})
        if key not in cache:
            cache[key] = make_plan(self.params, *key)
        return cache[key]

    def buffers(self, scan_shape, detector_shape):
        declared = {}
        if "point" in self.outputs:
            declared["point"] = Buffer("nav")
        if "selected" in self.outputs:
            declared["selected_frame"] = Buffer("sig")
            declared["selected_seen"] = Buffer("single", (1,))
        if self.splat:
            plan = self._plan(scan_shape, detector_shape)
            declared["shifted"] = Buffer("single", (self.n_acc, plan.padded_size))
        if self.aperture:
            declared["aperture"] = Buffer(
                "single", (self.n_acc, detector_shape[0] * detector_shape[1])
            )
        return declared

    def prepare(self, scan_shape, detector_shape):
        select, point = self._positions(scan_shape, detector_shape)
        plan = self._plan(scan_shape, detector_shape) if self.splat else None
        return {"select": select, "point": point, "plan": plan, "scan": tuple(scan_shape)}

    def process(self, buffers, frames, scan_y, scan_x, task):
        n = frames.shape[0]
        if self.params.has_descan:
            # the beam back where it is at the scan centre: the twin's fixed centre holds
            shifts = descan_shifts(self.params.descan, scan_y, scan_x, task["scan"])
            frames = compensate_frames(frames, shifts)
        if "point" in buffers:
            buffers["point"][:] = frames[:, task["point"][0], task["point"][1]]
        if "selected_frame" in buffers:
            select = task["select"]
            hit = np.flatnonzero((scan_y == select[0]) & (scan_x == select[1]))
            if hit.size:
                buffers["selected_frame"][:] = frames[hit[0]]
                buffers["selected_seen"][:] += 1
        flat = frames.reshape(n, -1)
        if self.splat:
            aperture = buffers["aperture"] if self.aperture else np.zeros((self.n_acc, 0))
            splat_frames(
                native_contiguous(flat),
                scan_y,
                scan_x,
                task["plan"],
                buffers["shifted"],
                aperture,
                aperture_sum=self.aperture,
            )
        elif self.aperture:
            buffers["aperture"][0] += flat.sum(axis=0, dtype=np.float64)

    def finish(self, buffers, scan_shape, detector_shape, task):
        """The requested images (float64)."""
        selected_frame = None
        if "selected_frame" in buffers and buffers["selected_seen"][0] > 0:
            selected_frame = buffers["selected_frame"]
        return finish_images(
            self.params,
            self.outputs,
            scan_shape,
            select=task["select"],
            point_image=buffers.get("point"),
            selected_frame=selected_frame,
            shifted_sum=task["plan"].crop(buffers["shifted"].sum(axis=0)).copy()
            if self.splat
            else None,
            aperture_sum=buffers["aperture"].sum(axis=0).reshape(detector_shape)
            if self.aperture
            else None,
        )


def finish_images(
    params: TwinParams,
    outputs,
    scan_shape,
    *,
    select,
    point_image,
    selected_frame,
    shifted_sum,
    aperture_sum,
) -> dict[str, np.ndarray]:
    """Turn the accumulated sums into the requested images (shared by every executor)."""
    out: dict[str, np.ndarray] = {}
    if "point" in outputs:
        out["point"] = point_image
    if "selected" in outputs:
        if selected_frame is None:
            raise InvalidDataError(
                f"The frame at select={select} was not among the frames processed."
            )
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


def compute(
    data,
    params: TwinParams,
    *,
    select=None,
    point=None,
    outputs=None,
    progress: Callable[[float], object] | None = None,
    executor: str | None = None,
) -> dict[str, np.ndarray]:
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
        :class:`OverfocusPass` (see :mod:`napari_emcal.engine`);
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
    return run_pass(
        data,
        OverfocusPass(params, select=select, point=point, outputs=outputs),
        executor=executor,
        progress=progress,
    )


#: Frame types the kernels are compiled for ahead of first use (detectors write unsigned
#: counts; processed data are float).
COMMON_DTYPES = ("uint8", "uint16", "uint32", "float32", "float64")


def warm_up(dtypes=COMMON_DTYPES) -> list[str]:
    """Compile (or load from numba's cache) the pass for each of ``dtypes`` on a tiny array,
    so that the first real pass does not wait for it; returns the dtypes done. Meant for a
    background thread when a viewer opens the overfocus tool."""
    params = TwinParams(
        overfocus=1e-6,
        scan_pixel_size=1e-9,
        camera_length=0.15,
        detector_pixel_size=55e-6,
        cy=1.5,
        cx=1.5,
        scan_rotation=10.0,
    )
    done = []
    for dtype in dtypes:
        compute(np.zeros((2, 2, 4, 4), dtype=dtype), params)
        done.append(str(np.dtype(dtype)))
    return done
