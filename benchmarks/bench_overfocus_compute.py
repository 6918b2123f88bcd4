"""Throughput of one full overfocus pass (all five images) against data.sum() on the same array.

Run: .venv/bin/python benchmarks/bench_overfocus_compute.py [--quick] [--large] [--rounds N]

Per shape, dtype and shadow magnification |k| (scan px per detector px; ``--k``, default
0.4 and 1.5): the pass and ``data.sum()`` timed interleaved (pass, sum, pass, sum...)
over several rounds on the same array, medians reported: wall and CPU seconds of the pass,
frames/s, GB/s, the ratio of throughputs (pass / data.sum(), the memory-bandwidth yardstick
measured in the same minute on the same, shared machine), and the cores the pass kept busy
(its CPU time / wall time; numba's threads against ``os.cpu_count()``), and the ratio per
core (``data.sum()``'s CPU time over the pass's: on a shared machine, where the pass gets
less than its cores, what it would reach per core it has). The first lines
name the CPU, the instruction set LLVM compiles the kernels for and its SIMD extensions,
so that figures from different machines compare. Issue 39's targets: ratio at least 0.5
for float32 and 0.7 for uint16. ``--large`` adds the 2.1 GB 256²x128² uint16 case.

``--reference`` also times the published reference on the same array, LiberTEM
Microscope-Calibration's ``OverfocusUDF`` on LiberTEM's inline executor (interleaved
too), and prints this pass's speed-up over it. The reference is not a dependency (it is
GPL and needs TemGym at a pinned commit); put both on ``PYTHONPATH``, e.g.::

    git clone https://github.com/LiberTEM/Microscope-Calibration /tmp/mc
    git clone https://github.com/TemGym/TemGym /tmp/tg
    git -C /tmp/tg checkout c7a851ce2d67   # the commit the reference pins
    export PYTHONPATH=/tmp/mc/src:/tmp/tg/src
    .venv/bin/python benchmarks/bench_overfocus_compute.py --large --reference
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numba
import numpy as np

from napari_emcal.overfocus import TwinParams, compute


def timed(fn) -> tuple[float, float]:
    """(wall s, CPU s of this process) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def cpu_description() -> list[str]:
    """The CPU's model, the target LLVM compiles numba's kernels for, and its SIMD set."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            model = next(
                line.split(":", 1)[1].strip() for line in info if line.startswith("model name")
            )
    except (OSError, StopIteration):
        pass
    from llvmlite import binding

    target = os.environ.get("NUMBA_CPU_NAME") or binding.get_host_cpu_name()
    features = binding.get_host_cpu_features()
    simd = [
        name
        for name in ("sse4.2", "avx", "avx2", "fma", "avx512f", "avx512vl", "neon", "sve")
        if features.get(name)
    ]
    return [f"CPU: {model} ({target}); SIMD: {' '.join(simd) or 'none found'}"]


def twin_at(k: float, shape) -> TwinParams:
    """The benchmark's twin with shadow magnification ``k`` (scan px per detector px)."""
    scan_pixel_size, camera_length, detector_pixel_size = 1e-9, 0.15, 55e-6
    return TwinParams(
        overfocus=k * camera_length * scan_pixel_size / (detector_pixel_size - k * scan_pixel_size),
        scan_pixel_size=scan_pixel_size,
        camera_length=camera_length,
        detector_pixel_size=detector_pixel_size,
        cy=shape[2] / 2,
        cx=shape[3] / 2,
        scan_rotation=13.0,
    )


def reference_pass(data: np.ndarray, params):
    """A function running the reference's pass on ``data`` (see the module docstring)."""
    from libertem.api import Context
    from microscope_calibration.udf.stem_overfocus import OverfocusUDF

    context = Context.make_with("inline")
    dataset = context.load("memory", data=data, num_partitions=max(1, os.cpu_count() or 1))
    reference_params = {
        name: getattr(params, name)
        for name in (
            "overfocus",
            "scan_pixel_size",
            "camera_length",
            "detector_pixel_size",
            "cy",
            "cx",
            "scan_rotation",
            "flip_y",
        )
    }
    # the reference traces rays through a cone: any semi-convergence angle gives its map
    reference_params["semiconv"] = params.semiconv or 1e-3
    udf = OverfocusUDF(reference_params)
    return lambda: context.run_udf(dataset=dataset, udf=udf)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="a small array, three rounds")
    parser.add_argument("--large", action="store_true", help="also 256x256x128x128 uint16")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per case")
    parser.add_argument(
        "--reference", action="store_true", help="also time the reference (see the docstring)"
    )
    parser.add_argument("--k", default="0.4,1.5", help="shadow magnifications |k|, comma-separated")
    args = parser.parse_args()
    magnifications = [float(k) for k in args.k.split(",")]
    cases = [
        ((128, 128, 128, 128), np.float32),
        ((64, 64, 256, 256), np.float32),
        ((64, 64, 256, 256), np.uint16),
        ((128, 128, 128, 128), np.uint16),
    ]
    if args.large:
        cases.append(((256, 256, 128, 128), np.uint16))
    rounds = args.rounds
    if args.quick:
        cases, rounds = [((64, 64, 64, 64), np.float32)], 3
    print(*cpu_description(), sep="\n")
    print(f"{numba.get_num_threads()} numba threads, {os.cpu_count()} CPUs; medians of {rounds}")
    print(
        f"{'shape':<22}{'dtype':<9}{'|k|':>5}{'wall s':>8}{'CPU s':>7}{'cores':>6}{'frames/s':>11}"
        f"{'GB/s':>7}{'sum s':>8}{'ratio':>7}{'/core':>7}"
        + (f"{'ref s':>8}{'speed-up':>9}" * args.reference)
    )
    rng = np.random.default_rng(0)
    for shape, dtype in cases:
        data = (rng.random(shape, dtype=np.float32) * 100).astype(dtype)
        for k in magnifications:
            print(row(data, twin_at(k, shape), k, rounds, args.reference), flush=True)


def row(data: np.ndarray, params: TwinParams, k: float, rounds: int, reference: bool) -> str:
    """One line of the table: the pass and data.sum() (and the reference) interleaved."""
    compute(data[:2, :2], params)  # compile for this dtype outside the timing
    ref = None
    if reference:
        ref = reference_pass(data, params)
        ref()  # compiles, outside the timing
    passes, sums, references = [], [], []
    for _ in range(rounds):  # interleaved: all see the same machine load
        passes.append(timed(lambda: compute(data, params)))
        sums.append(timed(lambda: data.sum()))
        if ref is not None:
            references.append(timed(ref)[0])
    wall = statistics.median(w for w, _ in passes)
    cpu = statistics.median(c for _, c in passes)
    t_sum = statistics.median(w for w, _ in sums)
    cpu_sum = statistics.median(c for _, c in sums)
    frames = data.shape[0] * data.shape[1]
    line = (
        f"{str(data.shape):<22}{data.dtype.name:<9}{k:5.2f}{wall:8.3f}{cpu:7.2f}"
        f"{cpu / wall:6.2f}{frames / wall:11,.0f}{data.nbytes / wall / 1e9:7.2f}"
        f"{t_sum:8.3f}{t_sum / wall:7.2f}{cpu_sum / cpu:7.2f}"
    )
    if references:
        t_ref = statistics.median(references)
        line += f"{t_ref:8.3f}{t_ref / wall:9.1f}"
    return line


if __name__ == "__main__":
    main()
