"""Time from a parameter change to new layer data, headless, for a 128^4 float32 dataset.

Measures what the widget's worker does on every change (twin of the reduced data, one
``compute`` pass over it), in preview mode (detector binned, scan subsampled; the reduced
copy is made once when the preview settings change, not per change) and at full
resolution. Prints medians over a sweep of scan rotations and the ratio to data.sum().
Target: preview median under 0.1 s on a 2-core machine.

Run: .venv/bin/python benchmarks/bench_overfocus_responsiveness.py
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from napari_emcal.overfocus import TwinParams, compute
from napari_emcal.overfocus.preview import reduce_data, reduce_params


def median_update(data, params, angles, bin_=1, every=1):
    times = []
    for angle in angles:
        t0 = time.perf_counter()
        compute(data, reduce_params(params.replace(scan_rotation=angle), bin_, every))
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    data = np.random.default_rng(0).random((128, 128, 128, 128), dtype=np.float32)
    params = TwinParams(
        overfocus=1e-6,
        scan_pixel_size=1e-9,
        camera_length=0.15,
        detector_pixel_size=55e-6,
        cy=63.5,
        cx=63.5,
    )
    angles = np.linspace(-20, 20, 9)
    compute(data[:2, :2], params)  # compile outside the timing
    t0 = time.perf_counter()
    data.sum()
    t_sum = time.perf_counter() - t0
    for bin_, every in ((2, 1), (4, 1), (2, 2)):
        t0 = time.perf_counter()
        reduced = reduce_data(data, bin_, every)
        t_reduce = time.perf_counter() - t0
        t = median_update(reduced, params, angles, bin_, every)
        print(
            f"preview bin {bin_}, every {every}: median update {t:.3f} s "
            f"(reduction once {t_reduce:.2f} s)"
        )
    t = median_update(data, params, angles[:3])
    print(
        f"full resolution: median update {t:.3f} s; data.sum() {t_sum:.3f} s; ratio {t_sum / t:.2f}"
    )


if __name__ == "__main__":
    main()
