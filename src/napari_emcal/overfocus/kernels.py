"""Numba kernels of the overfocus twin: the per-frame work, free of any bookkeeping.

The twin is one affine map for every frame: detector pixel ``d`` recorded at scan
position ``s`` lands on ``t = s + o_d`` with a per-pixel offset ``o_d = M·(d − c)``. So the
offsets, their integer parts and the bilinear weights of their fractional parts are
computed once per parameter set (:class:`ShiftPlan`); the kernel then only adds every
detector value into the four scan-grid pixels around ``s + o_d``.

Sampling: *bilinear splatting*. A value that lands at fractional ``t`` is shared among
the four surrounding grid pixels with bilinear weights, the adjoint of bilinear
interpolation. Unlike nearest-neighbour rounding it has no dead zone, so the sharpness
of ``shifted_sum`` changes smoothly with the parameters and peaks at the true ones.

Loop order: the frames of a block are taken as *runs* of consecutive positions along a
scan row. For one detector pixel, the frames of a run land on two accumulator rows at one
fixed offset, so the bilinear splat is a 2-tap filter along a contiguous vector,
``y[j] += w0·x[j] + w1·x[j−1]`` into each of the two rows, which the compiler vectorises;
``x`` is the pixel's values over the run, gathered by transposing a small tile of
detector pixels x frames that stays in the L1 cache. The aperture sum is the tile's row
sums. (The earlier frame-by-frame order did four scattered read-modify-writes per
detector value and ran at a tenth of the memory bandwidth.)

The kernels take blocks of frames ``(n, dy·dx)`` with their scan positions, and add into
caller-owned accumulators, so the same code runs on a whole array, on a Dask block or on a
LiberTEM partition, and the results do not depend on how the frames were grouped (up to
floating-point summation order).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from .twin import TwinParams

__all__ = ["ShiftPlan", "make_plan", "splat_frames", "sample_specimen"]


@dataclass(frozen=True)
class ShiftPlan:
    """Per-parameter-set precomputation for :func:`splat_frames`.

    The shifted sum is accumulated in a padded, flattened buffer large enough that every
    target of every kept detector pixel falls inside it, so the kernel needs no bounds
    checks; :meth:`crop` cuts the scan grid out of it.

    Attributes
    ----------
    scan_shape, detector_shape : tuple of int
        Shapes the plan was made for.
    det_index : ndarray of intp, shape (m,)
        Flat indices of the contributing detector pixels (inside the bright-field disk
        when ``semiconv`` is set, and able to reach the scan grid at all).
    flat_offset : ndarray of intp, shape (m,)
        Flat offset in the padded buffer of each pixel's target ``floor(o_d)``.
    weights : ndarray of float64, shape (m, 4)
        Bilinear weights for the targets ``(0,0), (0,1), (1,0), (1,1)`` relative to
        ``floor(o_d)``.
    padded_shape : tuple of int
        Shape of the padded accumulator.
    origin : tuple of int
        Position of scan pixel (0, 0) in the padded accumulator.
    """

    scan_shape: tuple[int, int]
    detector_shape: tuple[int, int]
    det_index: np.ndarray
    flat_offset: np.ndarray
    weights: np.ndarray
    padded_shape: tuple[int, int]
    origin: tuple[int, int]
    #: For each detector pixel (flat index), its row in the arrays above, or -1.
    slot: np.ndarray = None

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
        """The scan grid out of a flat padded accumulator."""
        oy, ox = self.origin
        sy, sx = self.scan_shape
        return padded.reshape(self.padded_shape)[oy : oy + sy, ox : ox + sx]


def make_plan(
    params: TwinParams, scan_shape: tuple[int, int], detector_shape: tuple[int, int]
) -> ShiftPlan:
    """Precompute offsets and bilinear weights of every contributing detector pixel."""
    sy, sx = scan_shape
    dy, dx = detector_shape
    mask = params.bright_field_mask(detector_shape)
    if mask is None:
        det_index = np.arange(dy * dx, dtype=np.intp)
    else:
        det_index = np.flatnonzero(mask).astype(np.intp)
    py, px = np.divmod(det_index, dx)
    offsets = np.stack([py - params.cy, px - params.cx], axis=-1) @ params.matrix.T
    floor = np.floor(offsets).astype(np.intp)
    # A pixel whose target (and its +1 neighbour) never touches the grid adds nothing.
    keep = (
        (floor[:, 0] >= -sy)
        & (floor[:, 0] <= sy - 1)
        & (floor[:, 1] >= -sx)
        & (floor[:, 1] <= sx - 1)
    )
    det_index, offsets, floor, py = det_index[keep], offsets[keep], floor[keep], py[keep]

    fy, fx = (offsets - floor).T
    weights = np.stack([(1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx], axis=-1)
    lo = np.minimum(floor.min(axis=0, initial=0), 0)
    hi = np.maximum(floor.max(axis=0, initial=0), 0)
    padded_shape = (int(sy + hi[0] - lo[0] + 1), int(sx + hi[1] - lo[1] + 1))
    flat_offset = (floor[:, 0] * padded_shape[1] + floor[:, 1]).astype(np.intp)
    slot = np.full(dy * dx, -1, dtype=np.intp)
    slot[det_index] = np.arange(len(det_index), dtype=np.intp)
    return ShiftPlan(
        slot=slot,
        scan_shape=(int(sy), int(sx)),
        detector_shape=(int(dy), int(dx)),
        det_index=np.ascontiguousarray(det_index),
        flat_offset=flat_offset,
        weights=np.ascontiguousarray(weights),
        padded_shape=padded_shape,
        origin=(int(-lo[0]), int(-lo[1])),
    )


#: Bytes of the transposed tile (detector pixels x frames of a run, float64): within L1.
TILE_BYTES = 32768
#: Frames of a run taken at once: few enough that each frame gives a long contiguous read
#: of detector pixels (many frames at 64 kB apart each cost a TLB and cache miss).
RUN_FRAMES = 32


@numba.njit(parallel=True, nogil=True, cache=True)
def _accumulate_runs(
    frames,
    run_start,
    run_len,
    run_base,
    slot,
    flat_offset,
    weights,
    stride,
    tile,
    buffers,
    do_splat,
    do_aperture,
    shifted,
    aperture,
):  # pragma: no cover - compiled
    n_det = frames.shape[1]
    n_tiles = (n_det + tile - 1) // tile
    units = run_start.shape[0] * n_tiles
    n_threads = shifted.shape[0]
    for t in numba.prange(n_threads):
        acc = shifted[t]
        ap = aperture[t]
        buf = buffers[t]
        for u in range(t * units // n_threads, (t + 1) * units // n_threads):
            r = u // n_tiles
            k0 = (u % n_tiles) * tile
            k1 = min(k0 + tile, n_det)
            first = run_start[r]
            length = run_len[r]
            # gather: each detector pixel's values over the run, contiguous
            for k in range(k0, k1):
                for j in range(length):
                    buf[k - k0, j] = frames[first + j, k]
            if do_aperture:
                for k in range(k0, k1):
                    total = 0.0
                    for j in range(length):
                        total += buf[k - k0, j]
                    ap[k] += total
            if not do_splat:
                continue
            base = run_base[r]
            for k in range(k0, k1):
                q = slot[k]
                if q < 0:
                    continue
                x = buf[k - k0, :length]
                # the two accumulator rows the run lands on: a 2-tap filter along each
                # (slices: the compiler then vectorises, where indexing the whole array
                # ran 1.5x slower)
                for row in range(2):
                    start = base + flat_offset[q] + row * stride
                    y = acc[start : start + length + 1]
                    wa = weights[q, 2 * row]
                    wb = weights[q, 2 * row + 1]
                    y[0] += wa * x[0]
                    for j in range(1, length):
                        y[j] += wa * x[j] + wb * x[j - 1]
                    y[length] += wb * x[length - 1]


def _runs(scan_y: np.ndarray, scan_x: np.ndarray, most: int):
    """Start and length of each run of consecutive positions along one scan row, runs cut
    to at most ``most`` frames (a cut run is two runs: the filter's ends add up)."""
    n = len(scan_y)
    if n == 0:
        return np.zeros(0, np.intp), np.zeros(0, np.intp)
    breaks = np.flatnonzero((np.diff(scan_y) != 0) | (np.diff(scan_x) != 1)) + 1
    start = np.concatenate([[0], breaks]).astype(np.intp)
    length = np.diff(np.concatenate([start, [n]])).astype(np.intp)
    pieces = -(-length // most)
    first = np.repeat(start, pieces) + most * (
        np.arange(pieces.sum()) - np.repeat(np.cumsum(pieces) - pieces, pieces)
    )
    end = np.repeat(start + length, pieces)
    return first.astype(np.intp), np.minimum(end - first, most).astype(np.intp)


def splat_frames(
    frames,
    scan_y,
    scan_x,
    plan: ShiftPlan,
    shifted,
    aperture,
    *,
    splat: bool = True,
    aperture_sum: bool = True,
) -> None:
    """Add a block of frames into the shifted-sum and aperture-sum accumulators.

    Parameters
    ----------
    frames : ndarray, shape (n, dy·dx)
        Frames flattened, C-contiguous, native byte order, any integer or float dtype.
    scan_y, scan_x : array of int, shape (n,)
        Scan position of each frame.
    plan : ShiftPlan
    shifted : ndarray of float64, shape (n_acc, plan.padded_size)
        Padded shifted-sum accumulators. The frames are split among the ``n_acc``
        accumulators, which are filled in parallel; sum them over axis 0 afterwards.
    aperture : ndarray of float64, shape (n_acc, dy·dx)
        Aperture-sum accumulators.
    splat, aperture_sum : bool
        Which of the two sums to accumulate.
    """
    scan_y, scan_x = np.asarray(scan_y), np.asarray(scan_x)
    start, length = _runs(scan_y, scan_x, RUN_FRAMES)
    if len(start) == 0:
        return
    base = plan.frame_base(scan_y[start], scan_x[start])
    longest = int(length.max())
    # float64 tiles: a float32 tile halves the cache per value but the conversion in the
    # filter loop cost more than it saved (measured: 0.31 s against 0.27 s on 128⁴)
    tile = max(8, min(frames.shape[1], TILE_BYTES // (8 * longest)))
    buffers = np.empty((shifted.shape[0], tile, longest), np.float64)
    _accumulate_runs(
        frames,
        start,
        length,
        base,
        plan.slot,
        plan.flat_offset,
        plan.weights,
        plan.padded_shape[1],
        tile,
        buffers,
        splat,
        aperture_sum,
        shifted,
        aperture if aperture_sum else np.zeros((shifted.shape[0], 0)),
    )


@numba.njit(parallel=True, nogil=True, cache=True)
def _sample_specimen(
    specimen, origin_y, origin_x, step, matrix, cy, cx, mask, background, out
):  # pragma: no cover - compiled
    sy_n, sx_n, dy_n, dx_n = out.shape
    h, w = specimen.shape
    m00, m01, m10, m11 = matrix[0, 0], matrix[0, 1], matrix[1, 0], matrix[1, 1]
    for sy in numba.prange(sy_n):
        for sx in range(sx_n):
            for dy in range(dy_n):
                for dx in range(dx_n):
                    if not mask[dy, dx]:
                        out[sy, sx, dy, dx] = 0.0
                        continue
                    ry = dy - cy
                    rx = dx - cx
                    ty = origin_y + step * sy + m00 * ry + m01 * rx
                    tx = origin_x + step * sx + m10 * ry + m11 * rx
                    iy = int(np.floor(ty))
                    ix = int(np.floor(tx))
                    fy = ty - iy
                    fx = tx - ix
                    if iy < 0 or ix < 0 or iy + 1 >= h or ix + 1 >= w:
                        out[sy, sx, dy, dx] = background
                        continue
                    out[sy, sx, dy, dx] = (1 - fy) * (
                        (1 - fx) * specimen[iy, ix] + fx * specimen[iy, ix + 1]
                    ) + fy * ((1 - fx) * specimen[iy + 1, ix] + fx * specimen[iy + 1, ix + 1])


def sample_specimen(
    specimen, origin, params: TwinParams, mask, background, out, *, oversample: int = 1
) -> None:
    """Fill ``out[sy, sx, dy, dx]`` with the specimen bilinearly sampled where the twin says.

    ``origin`` is the specimen-pixel position of scan position (0, 0); the specimen has
    ``oversample`` pixels per scan step; ``mask`` selects the illuminated detector pixels
    (others are 0); points outside the specimen get ``background``.
    """
    _sample_specimen(
        np.ascontiguousarray(specimen, dtype=np.float64),
        float(origin[0]),
        float(origin[1]),
        float(oversample),
        params.matrix * oversample,
        params.cy,
        params.cx,
        mask,
        float(background),
        out,
    )
