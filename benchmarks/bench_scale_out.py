"""One full pass over a 4D STEM file larger than the memory allowed: throughput and peak
resident memory, in this machine's process and through a dask.distributed LocalCluster with
2 worker processes (via LiberTEM).

Targets (issue 9): peak resident memory of a full pass over an 8 GB file under 2 GB;
throughput through the cluster within 2x of the local one. The machine is shared and noisy,
so throughput is also given as a ratio to a baseline measured in the same run: reading the
file once with plain block reads (what any pass must at least do).

    .venv/bin/python benchmarks/bench_scale_out.py                 # 8 GB file, 2 GB limit
    .venv/bin/python benchmarks/bench_scale_out.py --size-gb 2 --limit-gb 1

The pass is the dataset check's (BF and ADF apertures, counts, centre of mass, disk
centres, saturation). The file is written to --folder (default: a temporary folder) and
removed at the end.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DETECTOR = (128, 128)
CHILD = """
import sys, time, resource, numpy as np
from napari_emcal.dataset_check import analyse, disk, annulus, BeamDisk
beam = BeamDisk(63.5, 63.5, 12.0)
masks = {"BF": disk((128, 128), beam.centre, beam.radius),
         "ADF": annulus((128, 128), beam.centre, 15, 90)}
data = np.load(sys.argv[1], mmap_mode="r")
start = time.perf_counter()
result = analyse(data, masks=masks, beam=beam, max_count=65535)
print(time.perf_counter() - start, float(result.total.sum()))
"""


def write_file(path: Path, size_gb: float) -> tuple[int, int]:
    """A (scan_y, 256, 128, 128) uint16 dataset of about ``size_gb``, written in blocks."""
    from napari_emcal.dataset_check import diffraction_dataset

    row = diffraction_dataset((1, 256), DETECTOR, radius=12.0, seed=0)  # one scan row
    row_bytes = row.nbytes
    rows = max(2, int(size_gb * 1e9 // row_bytes))
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint16, shape=(rows, 256) + DETECTOR)
    del out  # header written; fill with plain writes (no mapped pages in this process)
    header = np.load(path, mmap_mode="r").offset
    with open(path, "r+b") as stream:
        stream.seek(header)
        for _ in range(rows):
            stream.write(row.tobytes())
    return rows, 256


def read_once(path: Path, block_bytes: int = 64 * 2**20) -> float:
    start = time.perf_counter()
    with open(path, "rb") as stream:
        while stream.read(block_bytes):
            pass
    return time.perf_counter() - start


def local_pass(path: Path) -> tuple[float, float]:
    """(seconds, peak resident GB) of the pass in a fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    output = subprocess.run(
        [sys.executable, "-c", CHILD, str(path)], check=True, capture_output=True, text=True
    ).stdout.split()
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return float(output[0]), max(peak, before) / 2**20  # KiB -> GiB


def cluster_pass(path: Path) -> tuple[float, float]:
    """(seconds, largest worker peak resident GB) through a 2-worker LocalCluster.

    The workers get no dask memory limit (dask would restart them, not bound them): their
    peak resident memory is measured and compared with half the limit each.
    """
    from distributed import Client, LocalCluster

    from napari_emcal.dataset_check import BeamDisk, analyse, annulus, disk

    beam = BeamDisk(63.5, 63.5, 12.0)
    masks = {
        "BF": disk(DETECTOR, beam.centre, beam.radius),
        "ADF": annulus(DETECTOR, beam.centre, 15, 90),
    }
    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        memory_limit=0,
    ) as cluster:
        start = time.perf_counter()
        analyse(
            str(path), masks=masks, beam=beam, max_count=65535, executor=cluster.scheduler_address
        )
        seconds = time.perf_counter() - start
        with Client(cluster.scheduler_address) as client:
            peaks = client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    return seconds, max(peaks.values()) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gb", type=float, default=8.0)
    parser.add_argument("--limit-gb", type=float, default=2.0)
    parser.add_argument("--folder", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.folder) as folder:
        path = Path(folder) / "big.npy"
        start = time.perf_counter()
        scan = write_file(path, args.size_gb)
        size = path.stat().st_size / 1e9
        print(
            f"file        {size:.2f} GB, scan {scan}, detector {DETECTOR} uint16 "
            f"(written in {time.perf_counter() - start:.0f} s); memory limit "
            f"{args.limit_gb:g} GB"
        )
        baseline = read_once(path)
        print(f"read once   {baseline:.1f} s ({size / baseline:.2f} GB/s)  [baseline]")
        seconds, peak = local_pass(path)
        print(
            f"local pass  {seconds:.1f} s ({size / seconds:.2f} GB/s, ratio to read "
            f"{seconds / baseline:.2f}), peak resident {peak:.2f} GB "
            f"({'under' if peak < args.limit_gb else 'OVER'} the limit)"
        )
        cluster_seconds, cluster_peak = cluster_pass(path)
        print(
            f"cluster     {cluster_seconds:.1f} s ({size / cluster_seconds:.2f} GB/s, ratio to "
            f"local {cluster_seconds / seconds:.2f}, target < 2), largest worker peak "
            f"resident {cluster_peak:.2f} GB "
            f"({'under' if 2 * cluster_peak < args.limit_gb else 'OVER'}"
            f" half the limit)"
        )


if __name__ == "__main__":
    main()
