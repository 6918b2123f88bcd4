"""Opening is lazy: peak resident memory of open_4d, emcal check and emcal overfocus on a
large .npy file, measured with /usr/bin/time -v in fresh processes.

Baseline in the same run: a process that only imports napari_emcal's readers (what any
command pays before touching the file). The file is written once (4 GiB by default).

    .venv/bin/python benchmarks/bench_open_memory.py [--gib 4] [--keep]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
EMCAL = Path(sys.executable).with_name("emcal")


def peak_mb(command: list[str]) -> tuple[float, float]:
    """(peak resident MB, wall seconds) of a command, from GNU time."""
    done = subprocess.run(["/usr/bin/time", "-v", *command], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    peak = float(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", done.stderr)
    hours, minutes, seconds = (float(g) if g else 0.0 for g in wall.groups())
    return peak / 1024, hours * 3600 + minutes * 60 + seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=4.0, help="size of the test file")
    parser.add_argument("--keep", action="store_true", help="keep the file afterwards")
    args = parser.parse_args()
    frames = int(args.gib * 2**30 / (256 * 256 * 2))
    side = int(np.sqrt(frames))
    folder = Path(tempfile.mkdtemp(prefix="emcal-bench-"))
    path = folder / "scan.npy"
    data = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint16, shape=(side, side, 256, 256))
    rng = np.random.default_rng(0)
    row = rng.poisson(3.0, size=(side, 256, 256)).astype(np.uint16)
    for y in range(side):
        data[y] = row
    data.flush()
    del data
    size_gb = path.stat().st_size / 1e9
    params = folder / "twin.json"
    subprocess.run(
        [
            sys.executable,
            "-c",
            (
                "from napari_emcal.overfocus import TwinParams;"
                "TwinParams(overfocus=1e-6, scan_pixel_size=1e-9, camera_length=0.15, "
                f"detector_pixel_size=55e-6, cy=127.5, cx=127.5).save({str(params)!r})"
            ),
        ],
        check=True,
    )
    python = sys.executable
    runs = {
        "import the readers (baseline)": [python, "-c", "import napari_emcal.io.readers"],
        "open_4d": [
            python,
            "-c",
            f"from napari_emcal.io.readers import open_4d; open_4d({str(path)!r})",
        ],
        "emcal info": [str(EMCAL), "info", str(path)],
        "emcal check": [str(EMCAL), "check", str(path)],
        "emcal overfocus": [str(EMCAL), "overfocus", str(path), "--params", str(params)],
    }
    print(f"file: {side} x {side} x 256 x 256 uint16, {size_gb:.2f} GB")
    print(f"{'command':<32}{'peak resident':>16}{'- baseline':>12}{'wall':>9}")
    baseline = None
    for name, command in runs.items():
        mb, seconds = peak_mb(command)
        baseline = mb if baseline is None else baseline
        print(f"{name:<32}{mb / 1024:>13.2f} GB{(mb - baseline) / 1024:>9.2f} GB{seconds:>8.1f} s")
    if not args.keep:
        path.unlink()
        params.unlink()
        folder.rmdir()


if __name__ == "__main__":
    main()
