"""Detector regions inside the bright-field disk and their point images: plain sums (one
pass over the data), or sharpened with an estimate of ``M`` (each pixel's image placed on
its region's centroid first, the tilt correction of tcBF within each region)."""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from ...engine import Buffer, FramePass, native_contiguous, reduce_data, validate_4d
from ...engine.passes import run_local
from ...errors import CalibrationFailedError, InvalidDataError
from ..kernels import ShiftPlan, plan_from_offsets, splat_frames
from ..twin import TwinParams
from .disk import _central_crop, _Disk

#: Regions across the bright-field disk diameter for the direct estimate.
ESTIMATE_REGIONS = 12
#: A region is used when its pixels hold on average this share of the beam.
LIT_FRACTION = 0.75
#: Fewer regions (or region pairs) than this cannot give a robust fit of the 2x2 matrix.
MIN_PAIRS = 6
#: Neighbouring regions' images may be shifted by at most 1/REGION_SHIFT_PARTS of the scan.
REGION_SHIFT_PARTS = 6
#: Memory for the sharpened regions' accumulators (bytes), which bounds the threads used.
SHARP_BUFFER_BYTES = 512 * 2**20


@dataclass
class _Regions:
    """Point images of detector regions (zero mean, unit variance) and their centroids."""

    images: np.ndarray  # (n, sy, sx) float32, zero mean, unit variance
    centroids: np.ndarray  # (n, 2) full detector pixels, intensity weighted
    grid: np.ndarray  # (n, 2) region index (row, column)
    size: int  # full detector pixels per region side


def _regions(data, disk: _Disk, size: int, progress=None) -> _Regions:
    """Point images of ``size x size`` detector regions that lie mostly inside the disk.

    One pass over (a central crop of) the data, summing each region's pixels.
    """
    dy, dx = data.shape[2:]
    ny, nx = (dy // size) * size, (dx // size) * size
    gy, gx = ny // size, nx // size
    lit = disk.illumination[:ny, :nx]
    keep = np.argwhere(lit.reshape(gy, size, gx, size).mean(axis=(1, 3)) >= LIT_FRACTION)
    if len(keep) < MIN_PAIRS:
        raise CalibrationFailedError(
            "The bright-field disk covers too few detector pixels to measure parallax "
            f"({len(keep)} regions of {size} x {size} px)."
        )
    weights = lit.reshape(gy, size, gx, size)
    yy, xx = np.mgrid[:ny, :nx]
    w = weights.sum(axis=(1, 3))[keep[:, 0], keep[:, 1]]
    cy = (yy.reshape(gy, size, gx, size) * weights).sum(axis=(1, 3))[keep[:, 0], keep[:, 1]]
    cx = (xx.reshape(gy, size, gx, size) * weights).sum(axis=(1, 3))[keep[:, 0], keep[:, 1]]
    binned = reduce_data(_central_crop(data), size, 1, progress=progress)
    finite = np.isfinite(binned).all(axis=(2, 3))
    if not finite.all():
        bad = np.argwhere(~finite)
        raise InvalidDataError(
            f"{len(bad)} scan positions hold NaN or infinite values (first at scan position "
            f"{tuple(int(v) for v in bad[0])} of the central crop): replace or exclude them "
            "before calibrating."
        )
    images = np.moveaxis(binned[:, :, keep[:, 0], keep[:, 1]], -1, 0).astype(np.float64)
    return _Regions(_normalised(images), np.stack([cy / w, cx / w], axis=1), keep, size)


def _normalised(images: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance per image, single precision (ample at unit variance)."""
    images = images - images.mean(axis=(1, 2), keepdims=True)
    scale = images.std(axis=(1, 2), keepdims=True)
    return (images / np.where(scale > 0, scale, 1.0)).astype(np.float32)


class _SharpRegionsPass(FramePass):
    """Each region's point image with every pixel's image first shifted onto the region's
    centroid by ``M`` (:func:`_sharp_regions`): the splat kernel with one accumulator per
    region, stacked in one padded buffer."""

    def __init__(self, plan: ShiftPlan, n_acc: int):
        self.plan, self.n_acc = plan, n_acc

    def buffers(self, scan_shape, detector_shape):
        return {"shifted": Buffer("single", (self.n_acc, self.plan.padded_size))}

    def process(self, buffers, frames, scan_y, scan_x, task):
        flat = native_contiguous(frames.reshape(len(frames), -1))
        splat_frames(flat, scan_y, scan_x, self.plan, buffers["shifted"], None, aperture_sum=False)

    def finish(self, buffers, scan_shape, detector_shape, task):
        return buffers["shifted"].sum(axis=0)


def _sharp_regions(data, regions: _Regions, matrix: np.ndarray, progress=None) -> _Regions:
    """The regions' point images without their blur, given an estimate of ``M``.

    A region's plain sum blurs its image over ``|k| · size`` scan pixels (its pixels see
    the specimen at offsets ``M (d − c_r)`` from its centroid ``c_r``), which at high
    shadow magnification leaves little of the detail that locates a shift. Placing each
    pixel's image at ``s + M (d − c_r)`` before adding (bilinear splatting, as the
    overfocus pass) gives the image of a point detector at ``c_r``, sharp where ``M`` is
    right; an error of ``M`` blurs it symmetrically about ``c_r``, which moves no
    correlation peak. Scan positions near the edge are reached by fewer pixels: each image
    is divided by its coverage (the same splat of ones).
    """
    crop = _central_crop(data)
    (sy, sx), (dy, dx) = validate_4d(crop)
    size, n = regions.size, len(regions.images)
    region_of = np.full((dy, dx), -1, np.intp)
    for index, (i, j) in enumerate(regions.grid):
        region_of[i * size : (i + 1) * size, j * size : (j + 1) * size] = index
    group = region_of.ravel()
    keep = group >= 0
    py, px = np.divmod(np.arange(dy * dx), dx)
    offsets = np.zeros((dy * dx, 2))
    offsets[keep] = (
        np.stack([py[keep], px[keep]], axis=1) - regions.centroids[group[keep]]
    ) @ np.asarray(matrix).T
    plan = plan_from_offsets(offsets, keep, (sy, sx), (dy, dx), np.maximum(group, 0), n)
    # one accumulator per thread, each holding every region's image: as many threads as
    # fit in SHARP_BUFFER_BYTES (hundreds of MB each on a large detector at high |k|)
    n_acc = max(1, min(numba.get_num_threads(), SHARP_BUFFER_BYTES // (8 * plan.padded_size)))

    def images_of(frames_source, report=None):
        return plan.crop(run_local(frames_source, _SharpRegionsPass(plan, n_acc), report))

    images = images_of(crop, progress)
    coverage = images_of(np.broadcast_to(np.ones((), np.uint8), (sy, sx, dy, dx)))
    return _Regions(
        _normalised(images / np.maximum(coverage, 1e-3 * coverage.max())),
        regions.centroids,
        regions.grid,
        size,
    )


def _region_size(disk: _Disk, start: TwinParams, scan_shape) -> int:
    """Detector pixels per region side: about ESTIMATE_REGIONS across the disk, and small
    enough that neighbouring regions' images are shifted by at most 1/REGION_SHIFT_PARTS of
    the scan (sharpened images do not blur with the region's size, and larger regions hold more
    electrons: docs/science.md)."""
    size = max(1, round(2 * disk.radius / ESTIMATE_REGIONS))
    limit = min(scan_shape) / REGION_SHIFT_PARTS / max(abs(start.magnification), 1e-12)
    return max(1, min(size, int(limit)))
