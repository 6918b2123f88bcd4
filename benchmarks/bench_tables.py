"""Large calibration tables: load, check and save 500 000 rows with column operations.

Prints the time of each table's CSV load and save against ``pandas.read_csv`` of the same
file (the baseline, timed in the same run), so the ratio says what the checks cost.

    .venv/bin/python benchmarks/bench_tables.py [--rows N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from napari_emcal.dose import CurrentCalibration, DoseTable
from napari_emcal.grating import PixelSizeTable
from napari_emcal.highdefocus import HighDefocusTable


def frames(n: int, rng) -> dict[str, pd.DataFrame]:
    return {
        "HighDefocusTable": pd.DataFrame(
            {
                "defocus_um": -rng.uniform(10, 500, n),
                "intensity": rng.uniform(0, 100, n),
                "spot": rng.integers(1, 11, n),
                "probe": rng.choice(["micro", "nano"], n),
                "scale": rng.uniform(1.0, 1.2, n),
                "rotation_deg": rng.uniform(-10, 10, n),
                "score": rng.uniform(0, 1, n),
                "date": "2026-12-02T10:00:00",
                "near_image": "near.tif",
                "far_image": "far.tif",
            }
        ),
        "PixelSizeTable": pd.DataFrame(
            {
                "image": "grating.tif",
                "magnification": rng.uniform(1e3, 1e6, n),
                "pixel_size_nm": rng.uniform(0.01, 10, n),
                "angle_deg": rng.uniform(-45, 45, n),
                "mode": "grating",
                "quality": rng.uniform(0, 1, n),
                "binning": 1,
            }
        ),
        "CurrentCalibration": pd.DataFrame(
            {
                "voltage_kv": 300.0,
                "spot": rng.integers(1, 11, n),
                "current_pa": rng.uniform(1, 1e4, n),
                "probe": "",
                "method": "Faraday cup",
                "date": "",
                "note": "",
            }
        ),
        "DoseTable": pd.DataFrame(
            {
                "image": [f"image_{i}" for i in range(n)],
                "time": pd.date_range("2026-12-02T08:00", periods=n, freq="s").strftime(
                    "%Y-%m-%dT%H:%M:%S"
                ),
                "mode": "TEM",
                "voltage_kv": 300.0,
                "exposure_s": 1.0,
                "current_pa": 50.0,
                "illuminated_diameter_um": 2.0,
            }
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500_000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    classes = {
        "HighDefocusTable": HighDefocusTable,
        "PixelSizeTable": PixelSizeTable,
        "CurrentCalibration": CurrentCalibration,
        "DoseTable": DoseTable,
    }
    print(f"{args.rows:,} rows; times in seconds (ratio to pandas.read_csv of the same file)")
    print(f"{'table':<20}{'read_csv':>10}{'from_csv':>10}{'ratio':>8}{'to_csv':>10}")
    with tempfile.TemporaryDirectory() as folder:
        for name, frame in frames(args.rows, rng).items():
            path = Path(folder) / f"{name}.csv"
            frame.to_csv(path, index=False)
            t0 = time.perf_counter()
            pd.read_csv(path)
            baseline = time.perf_counter() - t0
            t0 = time.perf_counter()
            table = classes[name].from_csv(path)
            loaded = time.perf_counter() - t0
            assert len(table) == args.rows
            t0 = time.perf_counter()
            if name == "DoseTable":
                table.rows.to_csv(Path(folder) / "out.csv", index=False)  # entered columns
            else:
                table.to_csv(Path(folder) / "out.csv")
            saved = time.perf_counter() - t0
            print(
                f"{name:<20}{baseline:>10.2f}{loaded:>10.2f}{loaded / baseline:>8.1f}{saved:>10.2f}"
            )


if __name__ == "__main__":
    main()
