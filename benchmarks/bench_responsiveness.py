"""How long each dock's main action freezes napari's window: the longest gap of a 10 ms
heartbeat on the event loop (``napari_emcal._qt.heartbeat.Heartbeat``), with the action's
wall time beside it.

Each case opens its sample in a new viewer with its dock, waits until the dock is idle,
then measures the main action from the click to its result on screen:

- ``open overfocus``: opening the overfocus sample and its dock, until the first images;
- ``optimise``: *Optimise* on the overfocus sample; ``full pass``: *Full-resolution pass*;
- ``dataset check``: *Run check* on the overfocus sample;
- ``grating``: *Find* on the grating sample; ``high-defocus``: *Measure* on the sample pair;
- ``dose``: adding the in situ series to the dose table;
- ``diffraction``: *Calibrate* on the Au ring pattern; ``serialem``: *Measure* on the
  SerialEM image-shift series.

``--cold`` runs every case in a new process with an empty numba cache (``NUMBA_CACHE_DIR``
pointing at an empty folder), as on a new machine. Target: no gap over 100 ms warm, none
over 500 ms cold.

Run: xvfb-run -a .venv/bin/python benchmarks/bench_responsiveness.py [--cold] [CASE ...]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from napari_emcal._qt.heartbeat import dock_idle as idle

CASES = ("open overfocus", "optimise", "full pass", "dataset check", "grating")
CASES += ("high-defocus", "dose", "diffraction", "serialem")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def settle(until, timeout=300.0) -> None:
    from qtpy.QtWidgets import QApplication

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        QApplication.processEvents()
        if until():
            return
        time.sleep(0.002)
    raise TimeoutError("the action did not finish")


def docked(sample, dock):
    import napari

    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1366, 768)
    viewer.open_sample("napari-emcal", sample)
    _, widget = viewer.window.add_plugin_dock_widget("napari-emcal", dock)
    return viewer, widget


def measure(case: str) -> tuple[float, float, int]:
    """(longest gap s, wall time s, gaps over 100 ms) of one case."""
    from napari_emcal._qt.heartbeat import Heartbeat

    beat = Heartbeat()
    if case == "open overfocus":
        import napari

        viewer = napari.Viewer(show=True)
        settle(lambda: True)
        start = time.perf_counter()
        with beat:
            viewer.open_sample("napari-emcal", "overfocus_grating")
            settle(lambda: True)  # the sample's first frame drawn before the dock opens
            _, widget = viewer.window.add_plugin_dock_widget(
                "napari-emcal", "Overfocus calibration"
            )
            widget.set_layer(viewer.layers[0])
            settle(lambda: widget.output_layer("shifted_sum") is not None and idle(widget))
        wall = time.perf_counter() - start
        return beat.longest, wall, beat.count_over(0.1)
    if case in ("optimise", "full pass", "dataset check"):
        dock = "4D dataset check" if case == "dataset check" else "Overfocus calibration"
        viewer, widget = docked("overfocus_grating", dock)
        widget.set_layer(viewer.layers[0])
        settle(lambda: idle(widget))
        action = {
            "optimise": lambda: widget.run_calibration(refine=True),
            "full pass": lambda: widget.run_full(),
            "dataset check": lambda: widget.run(),
        }[case]
    elif case == "grating":
        viewer, widget = docked("grating_image", "Grating pixel size")
        widget.set_layer(viewer.layers[0])
        settle(lambda: idle(widget))
        action = widget.run
    elif case == "high-defocus":
        viewer, widget = docked("high_defocus_pair", "High-defocus mag")
        truth = viewer.layers[1].metadata["emcal"]
        near, far = np.array(truth["landmarks_near"]), np.array(truth["landmarks_far"])
        inside = np.flatnonzero(((far > 40) & (far < 984)).all(axis=1))[:2]
        for which, ends in (("near", near[inside]), ("far", far[inside])):
            widget.start_line(which)
            widget.line_layer(which).add_lines(ends)
        settle(lambda: idle(widget))
        action = widget.run
    elif case == "dose":
        viewer, widget = docked("in_situ_series", "Dose table")
        settle(lambda: idle(widget))

        def action():
            widget.add_layers(list(viewer.layers))
    elif case == "diffraction":
        viewer, widget = docked("au_ring_pattern", "Camera length (rings)")
        widget.set_layer(viewer.layers[0])
        settle(lambda: idle(widget))
        action = widget.run
    elif case == "serialem":
        viewer, widget = docked("serialem_series", "SerialEM calibrations")
        settle(lambda: idle(widget))
        action = widget.run
    else:
        raise SystemExit(f"unknown case {case!r}; choose from {', '.join(CASES)}")
    settle(lambda: True)
    start = time.perf_counter()
    with beat:
        action()
        settle(lambda: idle(widget))
    wall = time.perf_counter() - start
    return beat.longest, wall, beat.count_over(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", default=list(CASES))
    parser.add_argument("--cold", action="store_true", help="an empty numba cache per case")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="emcal-bench-"))  # never the user's files
    os.environ.setdefault("NAPARI_EMCAL_AUTOSAVE", str(scratch / "dose_table.json"))
    os.environ.setdefault("NAPARI_EMCAL_HISTORY", str(scratch / "history.sqlite"))
    if args.one:  # a child process: one case, one line of numbers
        longest, wall, over = measure(args.cases[0])
        print(f"{longest:.4f} {wall:.4f} {over}", flush=True)
        os._exit(0)  # the figures are out: no teardown of workers still warming up
    print(
        f"CPU: {cpu_model()}, {os.cpu_count()} cores; numba cache "
        f"{'empty per case' if args.cold else 'warm'}"
    )
    print(f"{'action':<16} {'longest freeze':>15} {'gaps > 100 ms':>14} {'wall':>8}")
    for case in args.cases:
        env = dict(os.environ)
        if args.cold:
            env["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="numba-empty-")
        else:  # one warm-up run fills numba's cache and the imports' caches
            subprocess.run(
                [sys.executable, __file__, "--one", case], env=env, capture_output=True, check=False
            )
        out = subprocess.run(
            [sys.executable, __file__, "--one", case],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode:
            print(f"{case:<16} failed: {out.stderr.strip().splitlines()[-1:]}")
            continue
        longest, wall, over = out.stdout.split()[-3:]
        print(
            f"{case:<16} {float(longest) * 1000:>12.0f} ms {int(over):>14d} {float(wall):>7.2f} s"
        )


if __name__ == "__main__":
    main()
