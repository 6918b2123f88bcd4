"""The overfocus pass's plan: per parameter set, where every detector pixel lands on the
scan grid and with which bilinear weights (what :func:`~.kernels.splat_frames` reads)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from .twin import TwinParams

__all__ = ["ShiftPlan", "make_plan", "plan_from_offsets"]


@dataclass(frozen=True)
class ShiftPlan:
    """Per-parameter-set precomputation for :func:`splat_frames`.

    The shifted sum is accumulated in a padded, flattened buffer large enough that every
    target of every kept detector pixel falls inside it, so the kernel needs no bounds
    checks; :meth:`crop` cuts the scan grid out of it. Every array is indexed by the flat
    detector pixel, so the kernel reads them contiguously along a tile of pixels.

    Attributes
    ----------
    scan_shape, detector_shape : tuple of int
        Shapes the plan was made for.
    keep : ndarray of bool, shape (dy·dx,)
        Pixels that contribute: inside the bright-field disk when ``semiconv`` is set,
        and able to reach the scan grid at all.
    flat_offset : ndarray of intp, shape (dy·dx,)
        Flat offset in the padded buffer of each pixel's target ``floor(o_d)`` (0 where
        not kept).
    weight_x, weight_y : ndarray of float64, shape (2, dy·dx)
        Bilinear weights ``(1 − f, f)`` of the fractional part of ``o_d`` along x and y;
        the weight of target ``(a, b)`` relative to ``floor(o_d)`` is
        ``weight_y[a] · weight_x[b]``. Zero where not kept.
    padded_shape : tuple of int
        Shape of the padded accumulator.
    origin : tuple of int
        Position of scan pixel (0, 0) in the padded accumulator.
    """

    scan_shape: tuple[int, int]
    detector_shape: tuple[int, int]
    keep: np.ndarray
    flat_offset: np.ndarray
    weight_x: np.ndarray
    weight_y: np.ndarray
    padded_shape: tuple[int, int]
    origin: tuple[int, int]
    #: Images stacked in the padded buffer (:func:`plan_from_offsets`).
    groups: int = 1
    #: How far (scan px) the target moves from one detector pixel to the next along a
    #: detector row (median over the kept pixels): sets the kernel's tile width.
    pixel_step: float = 1.0

    @functools.cached_property
    def weight_x_single(self) -> np.ndarray:
        """``weight_x`` in float32, for frames filtered in float32."""
        return self.weight_x.astype(np.float32)

    @property
    def padded_size(self) -> int:
        return self.padded_shape[0] * self.padded_shape[1]

    def frame_base(self, scan_y, scan_x) -> np.ndarray:
        """Flat index in the padded buffer of each frame's scan position."""
        return (
            (np.asarray(scan_y) + self.origin[0]) * self.padded_shape[1]
            + np.asarray(scan_x)
            + self.origin[1]
        ).astype(np.intp)

    def crop(self, padded: np.ndarray) -> np.ndarray:
        """The scan grid out of a flat padded accumulator: ``(sy, sx)``, or
        ``(groups, sy, sx)`` for a plan with several groups."""
        oy, ox = self.origin
        sy, sx = self.scan_shape
        stacked = padded.reshape(self.groups, -1, self.padded_shape[1])
        images = stacked[:, oy : oy + sy, ox : ox + sx]
        return images[0] if self.groups == 1 else images


def make_plan(
    params: TwinParams, scan_shape: tuple[int, int], detector_shape: tuple[int, int]
) -> ShiftPlan:
    """Precompute offsets and bilinear weights of every contributing detector pixel."""
    sy, sx = scan_shape
    dy, dx = detector_shape
    py, px = np.divmod(np.arange(dy * dx), dx)
    offsets = np.stack([py - params.cy, px - params.cx], axis=-1) @ params.matrix.T
    floor = np.floor(offsets)
    # A pixel whose target (and its +1 neighbour) never touches the grid adds nothing.
    keep = (
        (floor[:, 0] >= -sy)
        & (floor[:, 0] <= sy - 1)
        & (floor[:, 1] >= -sx)
        & (floor[:, 1] <= sx - 1)
    )
    mask = params.bright_field_mask(detector_shape)
    if mask is not None:
        keep &= mask.ravel()
    return plan_from_offsets(offsets, keep, scan_shape, detector_shape)


def plan_from_offsets(
    offsets: np.ndarray,
    keep: np.ndarray,
    scan_shape: tuple[int, int],
    detector_shape: tuple[int, int],
    group: np.ndarray | None = None,
    n_groups: int = 1,
) -> ShiftPlan:
    """The plan that adds detector pixel ``d`` recorded at scan position ``s`` at
    ``s + offsets[d]`` (scan px, (y, x), bilinear), for the pixels ``keep`` selects.

    With ``group`` (each pixel's index below ``n_groups``) each group gets its own image,
    stacked in the padded buffer; :meth:`ShiftPlan.crop` then returns ``(n_groups, sy,
    sx)``.
    """
    sy, sx = scan_shape
    dy, dx = detector_shape
    keep = np.asarray(keep, bool)
    floor = np.floor(offsets).astype(np.intp)
    floor[~keep] = 0
    frac = np.where(keep[:, None], offsets - floor, 0.0)
    weight_y = np.where(keep, [1 - frac[:, 0], frac[:, 0]], 0.0)
    weight_x = np.where(keep, [1 - frac[:, 1], frac[:, 1]], 0.0)
    lo = np.minimum(floor.min(axis=0, initial=0), 0)
    hi = np.maximum(floor.max(axis=0, initial=0), 0)
    block = (int(sy + hi[0] - lo[0] + 1), int(sx + hi[1] - lo[1] + 1))
    flat_offset = floor[:, 0] * block[1] + floor[:, 1]
    if group is not None:
        flat_offset = flat_offset + np.asarray(group, np.intp) * (block[0] * block[1])
    # neighbours along a detector row, both kept (and in one group)
    pairs = keep[:-1] & keep[1:] & (np.arange(dy * dx - 1) % dx != dx - 1)
    if group is not None:
        pairs &= np.diff(np.asarray(group)) == 0
    steps = np.hypot(*(offsets[1:] - offsets[:-1])[pairs].T)
    return ShiftPlan(
        scan_shape=(int(sy), int(sx)),
        detector_shape=(int(dy), int(dx)),
        keep=keep,
        flat_offset=np.where(keep, flat_offset, 0).astype(np.intp),
        weight_x=np.ascontiguousarray(weight_x),
        weight_y=np.ascontiguousarray(weight_y),
        padded_shape=(block[0] * n_groups, block[1]),
        origin=(int(-lo[0]), int(-lo[1])),
        groups=int(n_groups),
        pixel_step=float(np.median(steps)) if steps.size else 1.0,
    )
