"""Throughput of one full overfocus pass (all five images) against data.sum() on the same array.

Run: .venv/bin/python benchmarks/bench_overfocus_compute.py [--quick]
Prints seconds, frames/s, GB/s and the ratio of throughputs (compute / data.sum, both on
the same array in the same run); issue 21's targets on a 2-core machine: at least 0.3 for
float32 and 0.5 for uint16. ``--large`` adds the 2.1 GB 256²x128² uint16 case.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from napari_emcal.overfocus import TwinParams, compute


def best_of(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller arrays, one repeat")
    parser.add_argument("--large", action="store_true", help="also 256x256x128x128 uint16")
    args = parser.parse_args()
    cases = [
        ((128, 128, 128, 128), np.float32),
        ((64, 64, 256, 256), np.float32),
        ((64, 64, 256, 256), np.uint16),
    ]
    if args.large:
        cases.append(((256, 256, 128, 128), np.uint16))
    if args.quick:
        cases = [((64, 64, 64, 64), np.float32)]
    repeat = 1 if args.quick else 3
    rng = np.random.default_rng(0)
    print(
        f"{'shape':<22}{'dtype':<9}{'pass s':>8}{'frames/s':>11}{'GB/s':>7}{'sum s':>8}{'ratio':>7}"
    )
    for shape, dtype in cases:
        data = (rng.random(shape, dtype=np.float32) * 100).astype(dtype)
        params = TwinParams(
            overfocus=1e-6,
            scan_pixel_size=1e-9,
            camera_length=0.15,
            detector_pixel_size=55e-6,
            cy=shape[2] / 2,
            cx=shape[3] / 2,
            scan_rotation=13.0,
        )
        compute(data[:2, :2], params)  # compile for this dtype outside the timing
        t_pass = best_of(lambda: compute(data, params), repeat)
        t_sum = best_of(lambda: data.sum(), repeat)
        frames = shape[0] * shape[1]
        print(
            f"{str(shape):<22}{np.dtype(dtype).name:<9}{t_pass:8.3f}{frames / t_pass:11,.0f}"
            f"{data.nbytes / t_pass / 1e9:7.2f}{t_sum:8.3f}{t_sum / t_pass:7.2f}"
        )


if __name__ == "__main__":
    main()
