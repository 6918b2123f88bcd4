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
fixed offset, so the splat is a 2-tap filter along the run followed by two scaled adds
into contiguous rows. The bilinear weights are separable,
``(1 − fy, fy) ⊗ (1 − fx, fx)``, so the filter ``z[j] = (1 − fx)·x[j] + fx·x[j−1]`` is done
once per pixel and each row gets ``y[j] += (1 − fy)·z[j]`` or ``fy·z[j]``: plain
``axpy`` loops the compiler vectorises (both rows in one loop, reading ``z`` once).
``z`` is formed while a small tile of detector pixels x frames is transposed into the L1
cache, four pixels of four frames at a time in vector registers
(:func:`filter_transpose_4x4`, a numba intrinsic: a transpose written with scalars cost
more than all the rest); there too the aperture sum is added, across detector pixels.
(docs/science.md: what the kernel's layout gained.)

The kernels take blocks of frames ``(n, dy·dx)`` with their scan positions, and add into
caller-owned accumulators, so the same code runs on a whole array, on a Dask block or on a
LiberTEM partition, and the results do not depend on how the frames were grouped (up to
floating-point rounding order).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.core.errors import TypingError
from numba.extending import intrinsic

from .twin import TwinParams

__all__ = ["ShiftPlan", "make_plan", "plan_from_offsets", "splat_frames", "sample_specimen"]


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


# -- a 4x4 transpose in vector registers ------------------------------------------------
# Numba offers no shuffles, and LLVM does not vectorise a transpose written with scalars:
# one value per load and per store, which cost as much as all the rest of the pass. So
# the block is written in LLVM IR: four vector loads (four detector pixels of four
# frames), the 2-tap filter on whole vectors, the transpose by eight shuffles, four vector
# stores. The arithmetic and its order are those of the scalar code, so the results are
# bit for bit the same; the vectors are generic LLVM vectors, lowered to AVX, SSE or NEON
# for the machine at hand. (In this module, not its own: numba's cache of the kernel is
# invalidated only by changes to the kernel's own file.)

_F64 = ir.DoubleType()
_V4 = ir.VectorType(_F64, 4)
_I32X4 = ir.VectorType(ir.IntType(32), 4)
#: fused multiply-adds allowed, as the kernels' ``fastmath={"contract"}``
_CONTRACT = ("contract",)


def _widen(builder, vector, dtype):
    """A vector of ``dtype`` values as float64, each converted as ``np.float64(x)`` does."""
    if isinstance(dtype, types.Float):
        return vector if dtype.bitwidth == 64 else builder.fpext(vector, _V4)
    if isinstance(dtype, types.Integer) and dtype.signed:
        return builder.sitofp(vector, _V4)
    return builder.uitofp(vector, _V4)  # unsigned integers and booleans (stored 0/1)


def _pointer(context, builder, array_type, array, indices, element):
    """Pointer to four consecutive elements from ``array[indices]``, as a vector."""
    address = cgutils.get_item_pointer(context, builder, array_type, array, indices)
    return builder.bitcast(address, ir.VectorType(element, 4).as_pointer())


@intrinsic
def filter_transpose_4x4(
    typingctx, frames, frame, pixel, local, weight_x, previous, buf, column, aperture, add
):
    """Filter four frames at four detector pixels and store them transposed.

    For ``m`` in 0..3 and ``i`` in 0..3, with ``x_m = frames[frame + m, pixel + i]``
    as float64 and ``x_{−1} = previous[local + i]``::

        buf[local + i, column + m] = weight_x[0, pixel + i]·x_m + weight_x[1, pixel + i]·x_{m−1}
        previous[local + i] = x_3
        aperture[pixel + i] += (x_0 + x_1) + (x_2 + x_3)      # when ``add``

    All arrays must be C-contiguous; no bounds are checked (the caller's loops keep
    every index inside).
    """
    arrays = {
        "frames": frames,
        "weight_x": weight_x,
        "previous": previous,
        "buf": buf,
        "aperture": aperture,
    }
    for name, array_type in arrays.items():
        if not isinstance(array_type, types.Array) or array_type.layout != "C":
            raise TypingError(f"filter_transpose_4x4: {name} must be a C-contiguous array")
    if not isinstance(frames.dtype, (types.Integer, types.Float, types.Boolean)):
        raise TypingError(f"filter_transpose_4x4: frames of {frames.dtype}")
    signature = types.void(
        frames, frame, pixel, local, weight_x, previous, buf, column, aperture, add
    )

    def codegen(context, builder, sig, args):
        types_ = sig.args
        frames_v, frame_v, pixel_v, local_v, wx_v, prev_v, buf_v, column_v, ap_v, add_v = args
        intp = context.get_value_type(types.intp)
        frame_v = context.cast(builder, frame_v, types_[1], types.intp)
        pixel_v = context.cast(builder, pixel_v, types_[2], types.intp)
        local_v = context.cast(builder, local_v, types_[3], types.intp)
        column_v = context.cast(builder, column_v, types_[7], types.intp)
        add_v = context.cast(builder, add_v, types_[9], types.boolean)
        frames_a = context.make_array(types_[0])(context, builder, frames_v)
        wx_a = context.make_array(types_[4])(context, builder, wx_v)
        prev_a = context.make_array(types_[5])(context, builder, prev_v)
        buf_a = context.make_array(types_[6])(context, builder, buf_v)
        ap_a = context.make_array(types_[8])(context, builder, ap_v)
        element = context.get_data_type(types_[0].dtype)

        def const(value):
            return ir.Constant(intp, value)

        def load(array_type, array, indices, elem=_F64):
            pointer = _pointer(context, builder, array_type, array, indices, elem)
            return builder.load(pointer, align=1)

        def store(array_type, array, indices, value):
            pointer = _pointer(context, builder, array_type, array, indices, _F64)
            builder.store(value, pointer, align=1)  # any address: aperture is the caller's

        x = [
            _widen(
                builder,
                load(types_[0], frames_a, [builder.add(frame_v, const(m)), pixel_v], element),
                types_[0].dtype,
            )
            for m in range(4)
        ]
        g = load(types_[4], wx_a, [const(0), pixel_v])
        f = load(types_[4], wx_a, [const(1), pixel_v])
        before = load(types_[5], prev_a, [local_v])
        z = []
        for m in range(4):
            gx = builder.fmul(g, x[m], flags=_CONTRACT)
            fx = builder.fmul(f, before, flags=_CONTRACT)
            z.append(builder.fadd(gx, fx, flags=_CONTRACT))
            before = x[m]
        store(types_[5], prev_a, [local_v], x[3])
        with builder.if_then(add_v):
            total = builder.fadd(builder.fadd(x[0], x[1]), builder.fadd(x[2], x[3]))
            current = load(types_[8], ap_a, [pixel_v])
            store(types_[8], ap_a, [pixel_v], builder.fadd(current, total))
        # z[m][i] -> row i: interleave pairs of frames, then pairs of pairs
        even = ir.Constant(_I32X4, [0, 4, 2, 6])
        odd = ir.Constant(_I32X4, [1, 5, 3, 7])
        low = ir.Constant(_I32X4, [0, 1, 4, 5])
        high = ir.Constant(_I32X4, [2, 3, 6, 7])
        t0 = builder.shuffle_vector(z[0], z[1], even)  # z0[0] z1[0] z0[2] z1[2]
        t1 = builder.shuffle_vector(z[0], z[1], odd)  # z0[1] z1[1] z0[3] z1[3]
        t2 = builder.shuffle_vector(z[2], z[3], even)
        t3 = builder.shuffle_vector(z[2], z[3], odd)
        rows = [
            builder.shuffle_vector(t0, t2, low),  # z0[0] z1[0] z2[0] z3[0]
            builder.shuffle_vector(t1, t3, low),
            builder.shuffle_vector(t0, t2, high),
            builder.shuffle_vector(t1, t3, high),
        ]
        for i, row in enumerate(rows):
            store(types_[6], buf_a, [builder.add(local_v, const(i)), column_v], row)
        return context.get_dummy_value()

    return signature, codegen


#: Bytes of the transposed tile (detector pixels x frames of a run, float64): within L1.
TILE_BYTES = 32768
#: Scan pixels a tile's targets may spread over along the accumulator rows: a tile of
#: detector pixels whose targets move ``pixel_step`` each is at most ``TILE_SPREAD /
#: pixel_step`` wide, so that the accumulator rows it adds into stay in the L1 cache
#: with the tile (at a shadow magnification of 1.8, 96-pixel tiles ran the pass 1.7x
#: slower than 16-pixel ones; below 0.4 the width is set by ``TILE_BYTES``).
TILE_SPREAD = 32.0
#: Frames of a run taken at once: few enough that each frame gives a long contiguous read
#: of detector pixels (many frames at 64 kB apart each cost a TLB and cache miss).
RUN_FRAMES = 32


# fastmath "contract" only: fused multiply-adds, no reassociation and no assumptions
# about NaN or inf (data may hold them; they must reach the result as they would without)
@numba.njit(parallel=True, nogil=True, cache=True, fastmath={"contract"})
def _accumulate_runs(
    frames,
    run_start,
    run_len,
    run_base,
    keep,
    flat_offset,
    weight_x,
    weight_y,
    stride,
    tile,
    buffers,
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
        buf = buffers[t]
        previous = np.empty(tile)
        for u in range(t * units // n_threads, (t + 1) * units // n_threads):
            r = u // n_tiles
            k0 = (u % n_tiles) * tile
            k1 = min(k0 + tile, n_det)
            width = k1 - k0
            first = run_start[r]
            length = run_len[r]
            ap = aperture[t]
            # gather four frames at a time and filter, z[j] = g·x[j] + f·x[j−1]: four
            # pixels at a time in vector registers, the tile's last pixels one by one
            previous[:width] = 0.0
            j = 0
            while j + 4 <= length:
                k = 0
                while k + 4 <= width:
                    filter_transpose_4x4(
                        frames, first + j, k0 + k, k, weight_x, previous, buf, j, ap, do_aperture
                    )
                    k += 4
                # the tile's last pixels one value at a time (written out here: a helper
                # shared with the tail below costs time in this loop, docs/science.md)
                rest = k
                x0 = frames[first + j]
                x1 = frames[first + j + 1]
                x2 = frames[first + j + 2]
                x3 = frames[first + j + 3]
                for k in range(rest, width):
                    p = k0 + k
                    a0 = np.float64(x0[p])
                    a1 = np.float64(x1[p])
                    a2 = np.float64(x2[p])
                    a3 = np.float64(x3[p])
                    buf[k, j] = weight_x[0, p] * a0 + weight_x[1, p] * previous[k]
                    buf[k, j + 1] = weight_x[0, p] * a1 + weight_x[1, p] * a0
                    buf[k, j + 2] = weight_x[0, p] * a2 + weight_x[1, p] * a1
                    buf[k, j + 3] = weight_x[0, p] * a3 + weight_x[1, p] * a2
                    previous[k] = a3
                    if do_aperture:
                        ap[p] += (a0 + a1) + (a2 + a3)
                j += 4
            while j < length:
                x0 = frames[first + j]
                for k in range(width):
                    p = k0 + k
                    a0 = np.float64(x0[p])
                    buf[k, j] = weight_x[0, p] * a0 + weight_x[1, p] * previous[k]
                    previous[k] = a0
                    if do_aperture:
                        ap[p] += a0
                j += 1
            for k in range(width):
                buf[k, length] = weight_x[1, k0 + k] * previous[k]
            # splat: the filtered run into the two accumulator rows it lands on
            n = length + 1
            base = run_base[r]
            for k in range(k0, k1):
                if not keep[k]:
                    continue
                z = buf[k - k0, :n]
                start = base + flat_offset[k]
                # slices: the compiler then vectorises, where indexing the whole array
                # ran 1.5x slower
                y0 = acc[start : start + n]
                y1 = acc[start + stride : start + stride + n]
                w0 = weight_y[0, k]
                w1 = weight_y[1, k]
                for j in range(n):
                    y0[j] += w0 * z[j]
                    y1[j] += w1 * z[j]


def _tile_width(row: int, n_det: int, pixel_step: float) -> int:
    """Detector pixels per tile, a multiple of 8: the tile (``row`` float64 per pixel)
    within ``TILE_BYTES``, and its targets within ``TILE_SPREAD`` scan px."""
    widest = min(TILE_BYTES // (8 * row), TILE_SPREAD / max(pixel_step, 1e-3))
    return min(n_det, max(8, int(widest) // 8 * 8))


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
    aperture_sum: bool = True,
) -> None:
    """Add a block of frames into the shifted-sum and (optionally) aperture-sum
    accumulators.

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
    aperture : ndarray of float64, shape (n_acc, dy·dx), or None
        Aperture-sum accumulators (a view is fine); None with ``aperture_sum=False``.
    aperture_sum : bool
        Whether to accumulate the aperture sum too.
    """
    scan_y, scan_x = np.asarray(scan_y), np.asarray(scan_x)
    frames = np.ascontiguousarray(frames)  # the vector loads read 4 pixels at once
    start, length = _runs(scan_y, scan_x, RUN_FRAMES)
    if len(start) == 0:
        return
    base = plan.frame_base(scan_y[start], scan_x[start])
    # a row per pixel: the run and the filter's last tap, padded to whole 64-byte lines
    # so that every row starts aligned
    row = -(-(int(length.max()) + 1) // 8) * 8
    tile = _tile_width(row, frames.shape[1], plan.pixel_step)
    buffers = np.empty((shifted.shape[0], tile, row), np.float64)
    sums = aperture if aperture_sum else np.zeros((shifted.shape[0], 0))
    if not sums.flags.c_contiguous:  # a view: add into a contiguous copy, then back
        sums = np.zeros(sums.shape)
    _accumulate_runs(
        frames,
        start,
        length,
        base,
        plan.keep,
        plan.flat_offset,
        plan.weight_x,
        plan.weight_y,
        plan.padded_shape[1],
        tile,
        buffers,
        aperture_sum,
        shifted,
        sums,
    )
    if sums is not aperture and aperture_sum:
        aperture += sums


@numba.njit(parallel=True, nogil=True, cache=True)
def _sample_specimen(
    specimen, origin_y, origin_x, step, matrix, centres, radius2, background, out
):  # pragma: no cover - compiled
    sy_n, sx_n, dy_n, dx_n = out.shape
    h, w = specimen.shape
    m00, m01, m10, m11 = matrix[0, 0], matrix[0, 1], matrix[1, 0], matrix[1, 1]
    for sy in numba.prange(sy_n):
        for sx in range(sx_n):
            cy = centres[sy, sx, 0]
            cx = centres[sy, sx, 1]
            for dy in range(dy_n):
                for dx in range(dx_n):
                    ry = dy - cy
                    rx = dx - cx
                    if ry * ry + rx * rx > radius2:
                        out[sy, sx, dy, dx] = 0.0
                        continue
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
    specimen, origin, params: TwinParams, background, out, *, oversample: int = 1
) -> None:
    """Fill ``out[sy, sx, dy, dx]`` with the specimen bilinearly sampled where the twin says.

    ``origin`` is the specimen-pixel position of scan position (0, 0); the specimen has
    ``oversample`` pixels per scan step; detector pixels outside the bright-field disk
    (centred on each frame's beam centre ``c(s)``, descan included) are 0; points outside
    the specimen get ``background``.
    """
    scan_shape = out.shape[:2]
    yy, xx = np.mgrid[: scan_shape[0], : scan_shape[1]]
    centres = params.centre_at(np.stack([yy, xx], axis=-1), scan_shape)
    radius = params.disk_radius
    _sample_specimen(
        np.ascontiguousarray(specimen, dtype=np.float64),
        float(origin[0]),
        float(origin[1]),
        float(oversample),
        params.matrix * oversample,
        np.ascontiguousarray(centres, dtype=np.float64),
        np.inf if radius is None else float(radius) ** 2,
        float(background),
        out,
    )
