"""How sharp a ``shifted_sum`` is, measured where every detector pixel contributes."""

from __future__ import annotations

import numpy as np
from skimage.measure import blur_effect

from .twin import TwinParams

__all__ = ["covered_region", "blur"]


def covered_region(params: TwinParams, scan_shape, detector_shape) -> tuple[slice, slice]:
    """Slices of the scan grid that every contributing detector pixel reaches.

    Outside it ``shifted_sum`` sums fewer frames and its edges are darker. Falls back to
    the whole grid when the shadow is wider than the scan.
    """
    dy, dx = detector_shape
    mask = params.bright_field_mask(detector_shape)
    yy, xx = np.mgrid[:dy, :dx]
    rel = np.stack([yy - params.cy, xx - params.cx], -1).reshape(-1, 2)
    if mask is not None:
        rel = rel[mask.ravel()]
    if rel.size == 0:
        return slice(None), slice(None)
    offsets = rel @ params.matrix.T
    lo = np.floor(offsets.min(axis=0)).astype(int)
    hi = np.ceil(offsets.max(axis=0)).astype(int)
    slices = []
    for n, a, b in zip(scan_shape, lo, hi):
        start, stop = max(0, b), min(n, n + a)
        slices.append(slice(start, stop) if stop - start >= 8 else slice(None))
    return tuple(slices)


def blur(shifted_sum: np.ndarray, params: TwinParams, detector_shape) -> float:
    """``skimage.measure.blur_effect`` of the fully covered part (0 sharp .. 1 blurred)."""
    region = shifted_sum[covered_region(params, shifted_sum.shape, detector_shape)]
    if min(region.shape) < 3 or not np.isfinite(region).all() or np.ptp(region) == 0:
        return float("nan")
    return float(blur_effect(region))
