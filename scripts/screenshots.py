"""Screenshots of every dock after its main action, at a laptop's 1366x768, for the README.

Run: xvfb-run -a -s "-screen 0 1366x768x24" .venv/bin/python scripts/screenshots.py
Writes docs/screenshots/<tool>.png.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "docs" / "screenshots"


def settle(viewer, until=lambda: True, timeout=120.0):
    from qtpy.QtWidgets import QApplication

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        QApplication.processEvents()
        if until():
            break
        time.sleep(0.05)
    for _ in range(20):
        QApplication.processEvents()
        time.sleep(0.02)


def shoot(viewer, name):
    window = viewer.window._qt_window
    window.resize(1366, 768)
    settle(viewer)
    OUT.mkdir(parents=True, exist_ok=True)
    window.grab().save(str(OUT / f"{name}.png"))
    print("wrote", OUT / f"{name}.png")


def docked(sample, dock):
    """A viewer with a sample open and a dock of this plugin: (viewer, widget)."""
    import napari

    viewer = napari.Viewer(title=dock)
    viewer.open_sample("napari-emcal", sample)
    _, widget = viewer.window.add_plugin_dock_widget("napari-emcal", dock)
    return viewer, widget


def overfocus():
    viewer, widget = docked("overfocus_grating", "Overfocus calibration")
    widget.set_layer(viewer.layers[0])
    settle(viewer, lambda: not widget.task.running)
    widget.run_calibration(refine=True)
    settle(viewer, lambda: not widget.task.running)
    shoot(viewer, "overfocus")
    viewer.close()


def dataset_check():
    viewer, widget = docked("overfocus_grating", "4D dataset check")
    widget.set_layer(viewer.layers[0])
    widget.run()
    settle(viewer, lambda: not widget.task.running)
    shoot(viewer, "dataset_check")
    viewer.close()


def grating():
    viewer, widget = docked("grating_image", "Grating pixel size")
    widget.layer.value = viewer.layers[0]
    widget.run()
    settle(viewer, lambda: widget._worker is None)
    shoot(viewer, "grating")
    viewer.close()


def high_defocus():
    viewer, widget = docked("high_defocus_pair", "High-defocus mag")
    far = viewer.layers[1]
    truth = far.metadata["emcal"]
    ln, lf = np.array(truth["landmarks_near"]), np.array(truth["landmarks_far"])
    inside = ((lf > 40) & (lf < 984)).all(axis=1)
    first, second = np.flatnonzero(inside)[[0, 1]]
    for which, ends in (("near", ln[[first, second]]), ("far", lf[[first, second]])):
        widget.start_line(which)
        widget.line_layer(which).add_lines(ends)
    widget.run()
    settle(viewer, lambda: widget._worker is None)
    shoot(viewer, "high_defocus")
    viewer.close()


def dose():
    viewer, widget = docked("in_situ_series", "Dose table")
    widget.add_layers(list(viewer.layers))
    shoot(viewer, "dose")
    viewer.close()


if __name__ == "__main__":
    import os
    import tempfile

    scratch = Path(tempfile.mkdtemp())  # never the user's autosave or history
    os.environ.setdefault("NAPARI_EMCAL_AUTOSAVE", str(scratch / "dose_table_autosave.json"))
    os.environ.setdefault("NAPARI_EMCAL_HISTORY", str(scratch / "history.sqlite"))
    for shot in (overfocus, dataset_check, grating, high_defocus, dose):
        shot()
