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
cache, eight pixels of eight frames at a time in vector registers (:func:`filter_transpose`,
a numba intrinsic: a transpose written with scalars cost more than all the rest); there
too the aperture sum is added, across detector pixels. The adds into the rows are a
second intrinsic (:func:`splat_eight`), on runs padded with zeros to whole eights.

Precision: frames whose values float32 holds exactly (``SINGLE_DTYPES``) are filtered in
float32, eight values to a 256-bit vector, others in float64, 4x4. The filtered values are
added in float64, so the error is float32's rounding of each value's share (2.4·10⁻⁷ of a
total of one sign at most, tested on a 256² detector), whatever the number of frames. The
aperture sum adds eight frames in float32 first (exact for integers; float32 values past
4·10³⁷ could overflow there). NaN and inf propagate as in float64.
(docs/science.md: what the kernel's layout gained.)

The kernels take blocks of frames ``(n, dy·dx)`` with their scan positions, and add into
caller-owned accumulators, so the same code runs on a whole array, on a Dask block or on a
LiberTEM partition, and the results do not depend on how the frames were grouped (up to
floating-point rounding: float32's where the frames are filtered in float32, as a block
boundary cuts a run).
"""

from __future__ import annotations

import llvmlite
import numba
import numpy as np
from llvmlite import binding, ir
from numba.core import cgutils, types
from numba.core.errors import TypingError
from numba.extending import intrinsic, overload

from .plan import ShiftPlan, make_plan, plan_from_offsets
from .twin import TwinParams

__all__ = ["ShiftPlan", "make_plan", "plan_from_offsets", "splat_frames", "sample_specimen"]


# -- a small transpose in vector registers ----------------------------------------------
# Numba offers no shuffles, and LLVM does not vectorise a transpose written with scalars
# (which cost as much as all the rest of the pass). So the block is LLVM IR: vector loads,
# the 2-tap filter on whole vectors, the transpose by shuffles, vector stores; 4x4 in
# float64, 8x8 in float32 (half the instructions per value). Generic LLVM vectors, lowered
# to AVX-512, AVX, SSE or NEON. (In this module: numba's cache of the kernel is
# invalidated only by changes to the kernel's own file.)

_F64 = ir.DoubleType()
_F32 = ir.FloatType()
#: fused multiply-adds allowed, as the kernels' ``fastmath={"contract"}``
_CONTRACT = ("contract",)


def _widen(builder, vector, dtype, target):
    """A vector of ``dtype`` values as ``target`` floats, each converted as NumPy does."""
    if isinstance(dtype, types.Float):
        mine = 32 if isinstance(target.element, ir.FloatType) else 64
        if dtype.bitwidth == mine:
            return vector
        return (builder.fpext if dtype.bitwidth < mine else builder.fptrunc)(vector, target)
    if isinstance(dtype, types.Integer) and dtype.signed:
        return builder.sitofp(vector, target)
    return builder.uitofp(vector, target)  # unsigned integers and booleans (stored 0/1)


def _pointer(context, builder, array_type, array, indices, element, lanes):
    """Pointer to ``lanes`` consecutive elements from ``array[indices]``, as a vector."""
    address = cgutils.get_item_pointer(context, builder, array_type, array, indices)
    return builder.bitcast(address, ir.VectorType(element, lanes).as_pointer())


#: Detector pixels ahead that :func:`filter_transpose` prefetches the frames it reads: at
#: |k| 0.4 (80-pixel tiles) the pass's first stage ran 15-25 % faster with 128 than
#: without (256 and 512 gained less), at |k| 1.5 (16-pixel tiles) it made no difference.
PREFETCH_PIXELS = 128


#: The intrinsic's name carries its pointer type: ``ptr`` since LLVM's opaque pointers
_PREFETCH_NAME = (
    "llvm.prefetch.p0"
    if binding.llvm_version_info[0] >= 17
    or not getattr(llvmlite, "ir_layer_typed_pointers_enabled", True)
    else "llvm.prefetch.p0i8"
)


def _prefetch(builder, address):
    """A hint to load the cache line at ``address`` (a pointer; never faults, even past
    the array's end)."""
    i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
    function = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]), _PREFETCH_NAME
    )
    # read, high temporal locality (into every cache level), data cache
    builder.call(function, [builder.bitcast(address, i8p), i32(0), i32(3), i32(1)])


def _mask(values):
    return ir.Constant(ir.VectorType(ir.IntType(32), len(values)), list(values))


def _transpose(builder, z):
    """Rows ``z[m][i]`` -> ``rows[i][m]`` for 4 or 8 vectors of 4 or 8 lanes."""
    if len(z) == 4:
        # interleave pairs of frames, then pairs of pairs
        t0 = builder.shuffle_vector(z[0], z[1], _mask([0, 4, 2, 6]))  # z0[0] z1[0] z0[2] z1[2]
        t1 = builder.shuffle_vector(z[0], z[1], _mask([1, 5, 3, 7]))  # z0[1] z1[1] z0[3] z1[3]
        t2 = builder.shuffle_vector(z[2], z[3], _mask([0, 4, 2, 6]))
        t3 = builder.shuffle_vector(z[2], z[3], _mask([1, 5, 3, 7]))
        low, high = _mask([0, 1, 4, 5]), _mask([2, 3, 6, 7])
        return [
            builder.shuffle_vector(t0, t2, low),  # z0[0] z1[0] z2[0] z3[0]
            builder.shuffle_vector(t1, t3, low),
            builder.shuffle_vector(t0, t2, high),
            builder.shuffle_vector(t1, t3, high),
        ]
    # 8x8: the three stages of AVX's unpack, shuffle and 128-bit permute (each shuffle
    # stays within 128-bit halves until the last stage)
    unpack_low = _mask([0, 8, 1, 9, 4, 12, 5, 13])  # a0 b0 a1 b1 | a4 b4 a5 b5
    unpack_high = _mask([2, 10, 3, 11, 6, 14, 7, 15])  # a2 b2 a3 b3 | a6 b6 a7 b7
    t = []
    for m in range(0, 8, 2):
        t.append(builder.shuffle_vector(z[m], z[m + 1], unpack_low))
        t.append(builder.shuffle_vector(z[m], z[m + 1], unpack_high))
    pair_low = _mask([0, 1, 8, 9, 4, 5, 12, 13])  # a0 a1 b0 b1 | a4 a5 b4 b5
    pair_high = _mask([2, 3, 10, 11, 6, 7, 14, 15])
    u = []
    for a, b in ((t[0], t[2]), (t[1], t[3]), (t[4], t[6]), (t[5], t[7])):
        u.append(builder.shuffle_vector(a, b, pair_low))
        u.append(builder.shuffle_vector(a, b, pair_high))
    # u[0]: frames 0-3 of pixels 0 and 4; u[1]: pixels 1, 5; u[2]: 2, 6; u[3]: 3, 7;
    # u[4..7] the same for frames 4-7
    half_low = _mask([0, 1, 2, 3, 8, 9, 10, 11])
    half_high = _mask([4, 5, 6, 7, 12, 13, 14, 15])
    rows = [None] * 8
    for i in range(4):
        rows[i] = builder.shuffle_vector(u[i], u[i + 4], half_low)
        rows[i + 4] = builder.shuffle_vector(u[i], u[i + 4], half_high)
    return rows


@intrinsic
def filter_transpose(
    typingctx, frames, frame, pixel, local, weight_x, previous, buf, column, aperture, add
):
    """Filter ``L`` frames at ``L`` detector pixels and store them transposed, with
    ``L = 4`` for a float64 ``buf`` and ``L = 8`` for a float32 one.

    For ``m`` and ``i`` in ``0..L−1``, with ``x_m = frames[frame + m, pixel + i]``
    converted to ``buf``'s dtype and ``x_{−1} = previous[local + i]``::

        buf[local + i, column + m] = weight_x[0, pixel + i]·x_m + weight_x[1, pixel + i]·x_{m−1}
        previous[local + i] = x_{L−1}
        aperture[pixel + i] += (x_0 + x_1) + (x_2 + x_3) [+ ((x_4 + x_5) + (x_6 + x_7))]

    (the aperture's float64, the sum in ``buf``'s dtype; only when ``add``). ``weight_x``
    and ``previous`` have ``buf``'s dtype. All arrays must be C-contiguous; no bounds are
    checked (the caller's loops keep every index inside).
    """
    arrays = {"frames": frames, "weight_x": weight_x, "previous": previous, "buf": buf}
    for name, array_type in {**arrays, "aperture": aperture}.items():
        if not isinstance(array_type, types.Array) or array_type.layout != "C":
            raise TypingError(f"filter_transpose: {name} must be a C-contiguous array")
    if not isinstance(frames.dtype, (types.Integer, types.Float, types.Boolean)):
        raise TypingError(f"filter_transpose: frames of {frames.dtype}")
    if buf.dtype not in (types.float32, types.float64):
        raise TypingError(f"filter_transpose: buf of {buf.dtype}")
    if {weight_x.dtype, previous.dtype} != {buf.dtype} or aperture.dtype != types.float64:
        raise TypingError("filter_transpose: weight_x, previous of buf's dtype; aperture f8")
    single = buf.dtype == types.float32
    lanes = 8 if single else 4
    real = _F32 if single else _F64
    vector = ir.VectorType(real, lanes)
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

        def load(array_type, array, indices, elem=real):
            pointer = _pointer(context, builder, array_type, array, indices, elem, lanes)
            return builder.load(pointer, align=1)

        def store(array_type, array, indices, value, elem=real):
            pointer = _pointer(context, builder, array_type, array, indices, elem, lanes)
            builder.store(value, pointer, align=1)  # any address: aperture is the caller's

        x = [
            _widen(
                builder,
                load(types_[0], frames_a, [builder.add(frame_v, const(m)), pixel_v], element),
                types_[0].dtype,
                vector,
            )
            for m in range(lanes)
        ]
        g = load(types_[4], wx_a, [const(0), pixel_v])
        f = load(types_[4], wx_a, [const(1), pixel_v])
        before = load(types_[5], prev_a, [local_v])
        z = []
        for m in range(lanes):
            gx = builder.fmul(g, x[m], flags=_CONTRACT)
            fx = builder.fmul(f, before, flags=_CONTRACT)
            z.append(builder.fadd(gx, fx, flags=_CONTRACT))
            before = x[m]
        store(types_[5], prev_a, [local_v], x[-1])
        # ask for the same frames PREFETCH_PIXELS further on, which a later tile reads:
        # the hardware does not follow as many streams as a run has frames
        ahead = builder.add(pixel_v, const(PREFETCH_PIXELS))
        for m in range(lanes):
            row = builder.add(frame_v, const(m))
            address = cgutils.get_item_pointer(context, builder, types_[0], frames_a, [row, ahead])
            _prefetch(builder, address)
        with builder.if_then(add_v):
            sums = x
            while len(sums) > 1:  # pairwise: (x0 + x1) + (x2 + x3) ...
                sums = [builder.fadd(a, b) for a, b in zip(sums[::2], sums[1::2])]
            total = sums[0]
            if single:
                total = builder.fpext(total, ir.VectorType(_F64, lanes))
            current = load(types_[8], ap_a, [pixel_v], _F64)
            store(types_[8], ap_a, [pixel_v], builder.fadd(current, total), _F64)
        for i, row in enumerate(_transpose(builder, z)):
            store(types_[6], buf_a, [builder.add(local_v, const(i)), column_v], row)
        return context.get_dummy_value()

    return signature, codegen


#: Values of a filtered run one :func:`splat_eight` adds.
SPLAT_LANES = 8


@intrinsic
def splat_eight(typingctx, acc, start, stride, buf, row, column, w0, w1):
    """Add eight filtered values of a run into the two accumulator rows they land on.

    For ``j`` in ``0..7``, with ``z = buf[row, column + j]`` as float64::

        acc[start + column + j] += w0·z
        acc[start + stride + column + j] += w1·z

    The compiler's loop (slices) checked the rows for overlap and ended in a scalar
    remainder, as costly as the adds on 33-value runs; the caller pads runs with zeros to
    whole eights. ``acc`` and ``buf`` must be C-contiguous; no bounds are checked.
    """
    for name, array_type in {"acc": acc, "buf": buf}.items():
        if not isinstance(array_type, types.Array) or array_type.layout != "C":
            raise TypingError(f"splat_eight: {name} must be a C-contiguous array")
    if acc.dtype != types.float64 or buf.dtype not in (types.float32, types.float64):
        raise TypingError(f"splat_eight: acc of {acc.dtype}, buf of {buf.dtype}")
    lanes = SPLAT_LANES
    wide = ir.VectorType(_F64, lanes)
    signature = types.void(acc, start, stride, buf, row, column, w0, w1)

    def codegen(context, builder, sig, args):
        types_ = sig.args
        acc_v, start_v, stride_v, buf_v, row_v, column_v, w0_v, w1_v = args
        start_v = context.cast(builder, start_v, types_[1], types.intp)
        stride_v = context.cast(builder, stride_v, types_[2], types.intp)
        row_v = context.cast(builder, row_v, types_[4], types.intp)
        column_v = context.cast(builder, column_v, types_[5], types.intp)
        w0_v = context.cast(builder, w0_v, types_[6], types.float64)
        w1_v = context.cast(builder, w1_v, types_[7], types.float64)
        acc_a = context.make_array(types_[0])(context, builder, acc_v)
        buf_a = context.make_array(types_[3])(context, builder, buf_v)
        real = context.get_data_type(types_[3].dtype)
        pointer = _pointer(context, builder, types_[3], buf_a, [row_v, column_v], real, lanes)
        z = builder.load(pointer, align=1)
        if types_[3].dtype == types.float32:
            z = builder.fpext(z, wide)

        undefined = ir.Constant(wide, ir.Undefined)
        for offset, weight in ((column_v, w0_v), (builder.add(column_v, stride_v), w1_v)):
            first = builder.add(start_v, offset)
            target = _pointer(context, builder, types_[0], acc_a, [first], _F64, lanes)
            one = builder.insert_element(undefined, weight, ir.Constant(ir.IntType(32), 0))
            w = builder.shuffle_vector(one, undefined, _mask([0] * lanes))
            product = builder.fmul(w, z, flags=_CONTRACT)
            total = builder.fadd(builder.load(target, align=1), product, flags=_CONTRACT)
            builder.store(total, target, align=1)
        return context.get_dummy_value()

    return signature, codegen


def _as_dtype_of(value, array):  # pragma: no cover - replaced by the overload in numba
    return array.dtype.type(value)


@overload(_as_dtype_of, jit_options={"cache": True})
def _as_dtype_of_impl(value, array):
    """``value`` converted to ``array``'s dtype (float32 or float64) inside the kernel."""
    if array.dtype == types.float32:
        return lambda value, array: np.float32(value)
    return lambda value, array: np.float64(value)


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
    previous,
    do_aperture,
    shifted,
    aperture,
):  # pragma: no cover - compiled
    n_det = frames.shape[1]
    n_tiles = (n_det + tile - 1) // tile
    units = run_start.shape[0] * n_tiles
    n_threads = shifted.shape[0]
    # frames and pixels per transposed block: a 256-bit vector of the filter's dtype
    lanes = 32 // buffers.itemsize
    for t in numba.prange(n_threads):
        acc = shifted[t]
        buf = buffers[t]
        before = previous[t]
        for u in range(t * units // n_threads, (t + 1) * units // n_threads):
            r = u // n_tiles
            k0 = (u % n_tiles) * tile
            k1 = min(k0 + tile, n_det)
            width = k1 - k0
            first = run_start[r]
            length = run_len[r]
            ap = aperture[t]
            # gather `lanes` frames at a time and filter, z[j] = g·x[j] + f·x[j−1]:
            # `lanes` pixels at a time in vector registers, the tile's last pixels
            # (a detector whose pixel count is no multiple of 8) one by one
            before[:width] = 0.0
            j = 0
            while j + lanes <= length:
                k = 0
                while k + lanes <= width:
                    filter_transpose(
                        frames, first + j, k0 + k, k, weight_x, before, buf, j, ap, do_aperture
                    )
                    k += lanes
                rest = k
                for k in range(rest, width):
                    p = k0 + k
                    g = weight_x[0, p]
                    f = weight_x[1, p]
                    last = before[k]
                    for m in range(lanes):
                        a = _as_dtype_of(frames[first + j + m, p], buf)
                        buf[k, j + m] = g * a + f * last
                        last = a
                        if do_aperture:
                            ap[p] += np.float64(a)
                    before[k] = last
                j += lanes
            while j < length:
                x0 = frames[first + j]
                for k in range(width):
                    p = k0 + k
                    a = _as_dtype_of(x0[p], buf)
                    buf[k, j] = weight_x[0, p] * a + weight_x[1, p] * before[k]
                    before[k] = a
                    if do_aperture:
                        ap[p] += np.float64(a)
                j += 1
            # the filter's last tap, then zeros to whole eights (added, they change
            # nothing)
            n = length + 1
            padded = -(-n // SPLAT_LANES) * SPLAT_LANES
            for k in range(width):
                buf[k, length] = weight_x[1, k0 + k] * before[k]
                buf[k, n:padded] = 0.0
            # splat: the filtered run into the two accumulator rows it lands on
            base = run_base[r]
            for k in range(k0, k1):
                if not keep[k]:
                    continue
                start = base + flat_offset[k]
                w0 = weight_y[0, k]
                w1 = weight_y[1, k]
                if start + stride + padded <= acc.shape[0]:
                    for c in range(0, padded, SPLAT_LANES):
                        splat_eight(acc, start, stride, buf, k - k0, c, w0, w1)
                else:  # the padding would reach past the accumulator's end
                    for j in range(n):
                        z = buf[k - k0, j]
                        acc[start + j] += w0 * z
                        acc[start + stride + j] += w1 * z


#: Frame dtypes whose every value a float32 holds exactly: their runs are filtered in
#: float32 (8 values to a 256-bit vector instead of 4), the rest in float64.
SINGLE_DTYPES = frozenset(
    np.dtype(d) for d in ("bool", "uint8", "int8", "uint16", "int16", "float32")
)


def _tile_width(row: int, n_det: int, pixel_step: float, itemsize: int = 8) -> int:
    """Detector pixels per tile, a multiple of 8: the tile (``row`` values of ``itemsize``
    bytes per pixel) within ``TILE_BYTES``, and its targets within ``TILE_SPREAD`` scan
    px."""
    widest = min(TILE_BYTES // (itemsize * row), TILE_SPREAD / max(pixel_step, 1e-3))
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
    frames = np.ascontiguousarray(frames)  # the vector loads read 8 pixels at once
    start, length = _runs(scan_y, scan_x, RUN_FRAMES)
    if len(start) == 0:
        return
    base = plan.frame_base(scan_y[start], scan_x[start])
    real = np.float32 if frames.dtype in SINGLE_DTYPES else np.float64
    # a row per pixel: the run and the filter's last tap, padded to whole 64-byte lines
    # so that every row starts aligned
    line = 64 // np.dtype(real).itemsize
    row = -(-(int(length.max()) + 1) // line) * line
    tile = _tile_width(row, frames.shape[1], plan.pixel_step, np.dtype(real).itemsize)
    buffers = np.empty((shifted.shape[0], tile, row), real)
    previous = np.empty((shifted.shape[0], tile), real)
    weight_x = plan.weight_x if real is np.float64 else plan.weight_x_single
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
        weight_x,
        plan.weight_y,
        plan.padded_shape[1],
        tile,
        buffers,
        previous,
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
    yy, xx = np.mgrid[: out.shape[0], : out.shape[1]]
    centres = params.centre_at(np.stack([yy, xx], axis=-1), out.shape[:2])
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
