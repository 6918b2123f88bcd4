"""Descan: the beam's walk across the detector as the probe scans, fitted and undone.

When the post-specimen descan does not exactly cancel the scan, the beam centre on the
detector moves with the scan position ``s = (sy, sx)``::

    c(s) = c + D · (s − s_c),    s_c = ((Ny − 1) / 2, (Nx − 1) / 2)

``D`` (2x2, detector pixels per scan pixel, rows (cy, cx), columns (sy, sx)) is the
*descan matrix* (docs/conventions.md). This module holds what every tool shares about it:

- :func:`fit_descan`: the plane fit of measured disk centres (scan-shaped maps), with the
  standard errors of its matrix and origin from the regression's residuals;
- :func:`compensate_frames`: the per-frame resampling that puts the beam where it is at
  the scan centre, ``frame'(d) = frame(d + D (s − s_c))`` (bilinear, 0 outside);
- :class:`DescanCompensated`: any :class:`~napari_emcal.engine.passes.FramePass` run on
  compensated frames, so a tool's pass follows the beam without knowing about descan.

It knows nothing about any tool (the engine's rule).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numba
import numpy as np

from ..errors import CalibrationFailedError, InvalidParameterError
from .passes import FramePass

__all__ = [
    "Descan",
    "DescanCompensated",
    "check_descan",
    "compensate_frames",
    "compensated",
    "descan_shifts",
    "fit_descan",
    "is_zero",
    "scan_centre",
]

#: The largest plausible descan entry (detector px per scan px): beyond it the beam would
#: leave any detector within a few scan pixels, so the value is a unit or sign mistake.
MAX_DESCAN = 1.0


def scan_centre(scan_shape) -> np.ndarray:
    """``s_c = ((Ny − 1) / 2, (Nx − 1) / 2)``, the scan position where the descan shift
    is zero."""
    ny, nx = scan_shape
    return np.array([(ny - 1) / 2.0, (nx - 1) / 2.0])


def check_descan(descan, label: str = "descan") -> tuple[tuple[float, float], tuple[float, float]]:
    """``descan`` as a 2x2 tuple of tuples of floats.

    Raises
    ------
    InvalidParameterError
        Not a 2x2 array of finite numbers, or an entry beyond :data:`MAX_DESCAN` px/px.
    """
    if isinstance(descan, (str, bytes)):
        raise InvalidParameterError(f"{label} must be a 2x2 matrix (px/px), got {descan!r}.")
    try:
        matrix = np.array(descan, dtype=float)
    except (TypeError, ValueError):
        raise InvalidParameterError(
            f"{label} must be a 2x2 matrix of numbers (px/px), got {descan!r}."
        ) from None
    if matrix.shape != (2, 2):
        raise InvalidParameterError(
            f"{label} must be a 2x2 matrix [[dcy/dsy, dcy/dsx], [dcx/dsy, dcx/dsx]] (px/px), "
            f"got shape {matrix.shape}."
        )
    if not np.isfinite(matrix).all():
        raise InvalidParameterError(f"{label} must be finite, got {matrix.tolist()}.")
    if np.abs(matrix).max() > MAX_DESCAN:
        raise InvalidParameterError(
            f"{label} = {matrix.tolist()} detector px per scan px is beyond any plausible "
            f"descan (|entries| ≤ {MAX_DESCAN:g}): is it in px/px, rows (cy, cx), "
            "columns (sy, sx)?"
        )
    return tuple(tuple(float(v) + 0.0 for v in row) for row in matrix)  # type: ignore[return-value]


def is_zero(descan) -> bool:
    """Whether ``descan`` (2x2) is exactly zero: the beam does not walk."""
    return descan is None or not np.any(np.asarray(descan, dtype=float))


def descan_shifts(descan, scan_y, scan_x, scan_shape) -> np.ndarray:
    """The beam's shift ``D (s − s_c)`` (detector px, (dy, dx)) at each scan position.

    Returns
    -------
    ndarray, shape (n, 2)
    """
    matrix = np.asarray(descan, dtype=float)
    centre = scan_centre(scan_shape)
    s = np.stack(
        [
            np.asarray(scan_y, float).ravel() - centre[0],
            np.asarray(scan_x, float).ravel() - centre[1],
        ],
        axis=-1,
    )
    return s @ matrix.T


# -- the plane fit --------------------------------------------------------------------------
@dataclass(frozen=True)
class Descan:
    """A linear fit of the disk centre across the scan: ``c = origin + matrix @ (sy, sx)``.

    Attributes
    ----------
    origin : (float, float)
        Disk centre at scan position (0, 0), detector pixels.
    matrix : ndarray (2, 2)
        Detector pixels of disk shift per scan pixel: rows (cy, cx), columns (sy, sx).
    shift_across_scan : float
        The largest distance between the fitted disk centres anywhere in the scan,
        detector pixels.
    residual_px : float
        RMS of the measured centres about the fit.
    shift_map : ndarray (2, scan_y, scan_x)
        Fitted shift (dy, dx) relative to the scan centre, detector pixels.
    matrix_sigma : ndarray (2, 2) or None
        Standard errors of ``matrix`` from the regression's residuals (px/px); None when
        there are too few frames to estimate them (3).
    origin_sigma : (float, float) or None
        Standard errors of ``origin``, detector pixels.
    centre : (float, float)
        Fitted disk centre at the scan centre ``s_c`` (detector pixels): the twin's
        ``(cy, cx)``.
    centre_sigma : (float, float) or None
        Its standard errors.
    frames : int
        Frames that entered the fit.
    """

    origin: tuple[float, float]
    matrix: np.ndarray
    shift_across_scan: float
    residual_px: float
    shift_map: np.ndarray = field(repr=False)
    matrix_sigma: np.ndarray | None = None
    origin_sigma: tuple[float, float] | None = None
    centre: tuple[float, float] = (float("nan"), float("nan"))
    centre_sigma: tuple[float, float] | None = None
    frames: int = 0

    def exceeds(self, tolerance_px: float) -> bool:
        return self.shift_across_scan > tolerance_px


def fit_descan(disk_cy: np.ndarray, disk_cx: np.ndarray, weights=None) -> Descan:
    """Fit the disk centres (scan-shaped maps, detector px; NaN where unknown) with a
    plane each, by least squares.

    The standard errors are those of ordinary least squares, ``σ² (XᵀX)⁻¹`` with ``σ²`` the
    residual variance of that coordinate (``RSS / (n − 3)``): honest when the residuals
    are independent, as per-frame measurement noise is.

    Parameters
    ----------
    disk_cy, disk_cx : ndarray (scan_y, scan_x)
    weights : ndarray (scan_y, scan_x), optional
        Relative weights of the frames (0 excludes one).

    Raises
    ------
    CalibrationFailedError
        Fewer than 3 frames with a disk.
    """
    disk_cy = np.asarray(disk_cy, dtype=float)
    disk_cx = np.asarray(disk_cx, dtype=float)
    sy, sx = disk_cy.shape
    yy, xx = np.mgrid[:sy, :sx].astype(float)
    valid = np.isfinite(disk_cy) & np.isfinite(disk_cx)
    w = np.ones_like(disk_cy) if weights is None else np.asarray(weights, dtype=float)
    valid &= np.isfinite(w) & (w > 0)
    n = int(valid.sum())
    if n < 3:
        raise CalibrationFailedError("too few frames with a bright-field disk to fit the descan")
    root = np.sqrt(w[valid])
    design = np.column_stack([np.ones(n), yy[valid], xx[valid]])
    targets = np.column_stack([disk_cy[valid], disk_cx[valid]])
    coefficients, _, rank, _ = np.linalg.lstsq(
        design * root[:, None], targets * root[:, None], rcond=None
    )  # (3, 2)
    if rank < 3:
        raise CalibrationFailedError(
            "the frames with a disk lie on one line of the scan: the descan plane is undefined"
        )
    residual = targets - design @ coefficients
    matrix = coefficients[1:].T  # rows cy, cx; columns sy, sx
    centre = scan_centre((sy, sx))
    shift = np.einsum("ij,jyx->iyx", matrix, np.stack([yy - centre[0], xx - centre[1]]))
    corners = np.array([[0, 0], [0, sx - 1], [sy - 1, 0], [sy - 1, sx - 1]], float) @ matrix.T
    across = max(np.hypot(*(a - b)) for a in corners for b in corners)
    matrix_sigma = origin_sigma = centre_sigma = None
    if n > 3:
        weighted = residual * root[:, None]
        variance = (weighted**2).sum(axis=0) / (n - 3)  # per coordinate (cy, cx)
        inverse = np.linalg.inv((design * w[valid][:, None]).T @ design)
        matrix_sigma = np.sqrt(np.outer(variance, np.diag(inverse)[1:]))
        origin_sigma = tuple(float(v) for v in np.sqrt(variance * inverse[0, 0]))
        at = np.array([1.0, centre[0], centre[1]])
        centre_sigma = tuple(float(v) for v in np.sqrt(variance * (at @ inverse @ at)))
    fitted_centre = coefficients[0] + matrix @ centre
    return Descan(
        origin=(float(coefficients[0, 0]), float(coefficients[0, 1])),
        matrix=matrix,
        shift_across_scan=float(across),
        residual_px=float(np.sqrt((residual**2).sum(axis=1).mean())),
        shift_map=shift,
        matrix_sigma=matrix_sigma,
        origin_sigma=origin_sigma,
        centre=(float(fitted_centre[0]), float(fitted_centre[1])),
        centre_sigma=centre_sigma,
        frames=n,
    )


# -- per-frame compensation -------------------------------------------------------------------
@numba.njit(nogil=True, cache=True)
def _shift_frames(frames, shifts, out):
    """``out[i, y, x] = frames[i]`` bilinearly sampled at ``(y + shifts[i, 0], x +
    shifts[i, 1])``, 0 outside the detector. The shift is constant over a frame, so the
    four bilinear weights are too: four scaled adds of shifted rows per frame."""
    n, dy, dx = frames.shape
    for i in range(n):
        fy = np.floor(shifts[i, 0])
        fx = np.floor(shifts[i, 1])
        iy = int(fy)
        ix = int(fx)
        ty = shifts[i, 0] - fy
        tx = shifts[i, 1] - fx
        w00 = (1.0 - ty) * (1.0 - tx)
        w01 = (1.0 - ty) * tx
        w10 = ty * (1.0 - tx)
        w11 = ty * tx
        for y in range(dy):
            y0 = y + iy
            y1 = y0 + 1
            ok0 = 0 <= y0 < dy
            ok1 = 0 <= y1 < dy
            for x in range(dx):
                x0 = x + ix
                x1 = x0 + 1
                value = 0.0
                if 0 <= x0 < dx:
                    if ok0:
                        value += w00 * frames[i, y0, x0]
                    if ok1:
                        value += w10 * frames[i, y1, x0]
                if 0 <= x1 < dx:
                    if ok0:
                        value += w01 * frames[i, y0, x1]
                    if ok1:
                        value += w11 * frames[i, y1, x1]
                out[i, y, x] = value


def compensate_frames(frames, shifts) -> np.ndarray:
    """Frames resampled so the beam sits where it is at the scan centre.

    ``frame'(d) = frame(d + shift)``: with ``shift = D (s − s_c)`` (:func:`descan_shifts`)
    a feature that the descan moved to ``d + shift`` comes back to ``d``. Bilinear, 0
    outside the detector; an integer shift moves whole pixels unchanged.

    Parameters
    ----------
    frames : ndarray (n, dy, dx)
        Any real dtype.
    shifts : ndarray (n, 2)
        Per-frame shift (dy, dx), detector pixels.

    Returns
    -------
    ndarray (n, dy, dx), float64
    """
    frames = np.asarray(frames)
    if frames.dtype.byteorder not in ("=", "|"):
        frames = frames.astype(frames.dtype.newbyteorder("="))
    if frames.dtype.kind not in "fiu" or frames.dtype == np.float16:
        frames = frames.astype(np.float64)
    shifts = np.ascontiguousarray(shifts, dtype=np.float64).reshape(len(frames), 2)
    out = np.empty(frames.shape, dtype=np.float64)
    _shift_frames(np.ascontiguousarray(frames), shifts, out)
    return out


class DescanCompensated(FramePass):
    """Any pass, run on frames with the descan undone.

    Each block's frames are resampled by :func:`compensate_frames` with ``D (s − s_c)``
    before the wrapped pass sees them, so its fixed detector geometry (beam centre,
    apertures, masks) holds in every frame. With a zero ``descan`` the frames go through
    untouched (no cost).

    Parameters
    ----------
    inner : FramePass
        The pass to run.
    descan : array_like (2, 2)
        Detector px per scan px, rows (cy, cx), columns (sy, sx).
    """

    def __init__(self, inner: FramePass, descan):
        self.inner = inner
        self.descan = check_descan(descan)

    def buffers(self, scan_shape, detector_shape):
        return self.inner.buffers(scan_shape, detector_shape)

    def prepare(self, scan_shape, detector_shape):
        return {"inner": self.inner.prepare(scan_shape, detector_shape), "scan": scan_shape}

    def process(self, buffers, frames, scan_y, scan_x, task):
        if not is_zero(self.descan):
            shifts = descan_shifts(self.descan, scan_y, scan_x, task["scan"])
            if np.any(shifts):
                frames = compensate_frames(frames, shifts)
        self.inner.process(buffers, frames, scan_y, scan_x, task["inner"])

    def finish(self, buffers, scan_shape, detector_shape, task):
        return self.inner.finish(buffers, scan_shape, detector_shape, task["inner"])


def compensated(frame_pass: FramePass, descan) -> FramePass:
    """``frame_pass`` itself when ``descan`` is zero, else wrapped in
    :class:`DescanCompensated`."""
    if is_zero(descan):
        return frame_pass
    return DescanCompensated(frame_pass, descan)
