"""Does live processing keep up with the detector? (issue 23)

Run: .venv/bin/python benchmarks/bench_live.py [--scan 64] [--detector 256] [--dwell-us 0 500 1000]

Writes a simulated overfocused recording as a Merlin .hdr/.mib pair (headers copied from
the real recording in ../shared/data/real/4d/merlin_4x2), replays it with LiberTEM-live's
``libertem-live-mib-sim`` on 127.0.0.1 at each dwell time (0 = the simulator's default:
as fast as it can send), receives it with ``acquisitions`` running the overfocus pass and
keeping the frames (what ``emcal live --calibrate`` and the dock do), and prints frames/s
delivered (1/dwell) against frames/s processed, how many frames arrived, and the lag: how
long after the last frame was sent its scan was done. Processing keeps up when every frame
arrives and the lag stays under a second (it does not grow with the scan). Without the
real recording it says so.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from napari_emcal.engine.live import LiveError, LiveSource, acquisitions
from napari_emcal.overfocus import TwinParams, simulate
from napari_emcal.overfocus.images import OverfocusPass
from napari_emcal.specimens import detailed_specimen


def main() -> None:
    from tests.conftest import REAL_DATA, start_merlin_simulator, stop_simulator
    from tests.merlin_files import write_merlin

    parser = argparse.ArgumentParser()
    parser.add_argument("--scan", type=int, default=64, help="scan positions per side")
    parser.add_argument("--detector", type=int, default=256, help="detector pixels per side")
    parser.add_argument("--dwell-us", type=int, nargs="+", default=[0, 1000, 500])
    args = parser.parse_args()
    template = REAL_DATA / "4d/merlin_4x2/001_4x2_6bit.hdr"
    if not template.exists():
        print(f"needs the real Merlin recording {template} to copy its headers")
        return
    det = args.detector
    truth = TwinParams(
        overfocus=1.2e-6,
        scan_pixel_size=1e-9,
        camera_length=0.15,
        detector_pixel_size=55e-6 * 64 / det,
        cy=det / 2,
        cx=det / 2,
        scan_rotation=37.0,
        flip_y=True,
    )
    specimen = detailed_specimen((args.scan * 3,) * 2, feature_size=2.0, seed=1)
    frames = simulate(specimen, (args.scan,) * 2, (det, det), truth, dose=2e4, seed=1)
    frames = np.minimum(frames, 4095).astype(np.uint16)  # a 12-bit counter
    header = write_merlin(template, frames, Path(tempfile.mkdtemp()) / "bench")
    n = args.scan**2
    print(f"{n} frames of {det} x {det} uint16 ({frames.nbytes / 1e6:.0f} MB) per acquisition")
    print(
        f"{'dwell µs':>9}{'delivered /s':>14}{'processed /s':>14}{'received':>10}{'lag s':>8}"
        "  verdict"
    )
    for dwell in args.dwell_us:
        process, data_port, control_port = start_merlin_simulator(
            header, (args.scan,) * 2, dwell_us=dwell or None
        )
        source = LiveSource("merlin", "127.0.0.1", data_port, control_port, (args.scan,) * 2)
        try:
            t0 = time.perf_counter()
            (acquired,) = list(acquisitions(source, [OverfocusPass(truth)], timeout=60))
            wall = time.perf_counter() - t0
            received = n
        except LiveError as exc:
            print(f"{dwell:>9}  {exc}")
            continue
        finally:
            stop_simulator(process)
        processed = n / acquired.seconds
        delivered = 1e6 / dwell if dwell else float("nan")
        lag = acquired.seconds - n * dwell * 1e-6 if dwell else float("nan")
        verdict = "as fast as sent" if not dwell else ("keeps up" if lag < 1.0 else "BEHIND")
        print(
            f"{dwell:>9}{delivered:>14,.0f}{processed:>14,.0f}{received:>10}{lag:>8.2f}  "
            f"{verdict}" + (f" (wall {wall:.2f} s with connecting)" if not dwell else "")
        )


if __name__ == "__main__":
    main()
