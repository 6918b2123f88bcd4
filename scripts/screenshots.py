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


def overfocus_running():
    """During Optimise, the dock scrolled to its calibration section: the progress bar
    and Cancel in the footer, in view."""
    viewer, widget = docked("overfocus_grating", "Overfocus calibration")
    widget.set_layer(viewer.layers[0])
    settle(viewer, lambda: not widget.task.running)
    widget.root_native_widget.ensureWidgetVisible(widget.calibration.optimise_button.native)
    widget.run_calibration(refine=True)
    settle(viewer, lambda: widget.progress.value >= 20 or not widget.task.running, timeout=60)
    shoot(viewer, "overfocus_running")
    widget.cancel()
    settle(viewer, lambda: not widget.task.running)
    viewer.close()


def dataset_check_fpd():
    """The real FPD file (Merlin on a Titan): camera length from the file, the Medipix3's
    55 µm pixel typed (the file does not record it), angles in the report."""
    import napari

    path = Path(__file__).resolve().parents[1].parent / "shared/data/real/4d/fpd_hdf5/FPD_HDF5.hdf5"
    if not path.exists():
        print(f"skipped dataset_check_fpd: {path} not available")
        return
    viewer = napari.Viewer(title="4D dataset check")
    viewer.open(str(path), plugin="napari-emcal")
    _, widget = viewer.window.add_plugin_dock_widget("napari-emcal", "4D dataset check")
    widget.set_layer(viewer.layers[-1])
    widget.settings.detector_pixel.value = 55.0
    widget.run()
    settle(viewer, lambda: not widget.task.running)
    widget.root_native_widget.ensureWidgetVisible(widget.report_label.native)
    shoot(viewer, "dataset_check_fpd")
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


def real_file(relative: str) -> Path | None:
    """A real instrument file from $EMCAL_REAL_DATA or shared/data/real beside the
    checkout, or None (the shot is then skipped, saying so)."""
    import os

    folder = os.environ.get("EMCAL_REAL_DATA") or (
        Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"
    )
    path = Path(folder) / relative
    if not path.exists():
        print(f"skipped: real file {relative} not in {folder}")
        return None
    return path


def grating_real():
    """The real SrTiO3 [001] image (TIA), opened with its file calibration, measured as a
    lattice of 0.3905 nm: the microscope's calibration 3.4 % off."""
    import napari

    path = real_file("images/tia_srtio3/16_STOimage_1.ser")
    if path is None:
        return
    viewer = napari.Viewer(title="Grating pixel size")
    viewer.open(str(path), plugin="napari-emcal")
    _, widget = viewer.window.add_plugin_dock_widget("napari-emcal", "Grating pixel size")
    widget.set_layer(viewer.layers[-1])
    widget.mode.value = "lattice"
    widget.spacing.value = 0.3905
    widget.run()
    settle(viewer, lambda: widget._worker is None)
    shoot(viewer, "grating_real")
    viewer.close()


def dose_real():
    """Real files from three instruments in one dose table: a Velox EMD, a SerialEM
    frame set and a montage .mdoc."""
    import napari

    paths = [
        real_file(relative)
        for relative in (
            "images/velox_emd/test_si_16x16_215kx.emd",
            "images/serialem_mdoc/frame_set_single.mdoc",
            "images/serialem_mdoc/tilt_series.mdoc",
        )
    ]
    if None in paths:
        return
    viewer = napari.Viewer(title="Dose table")
    _, widget = viewer.window.add_plugin_dock_widget("napari-emcal", "Dose table")
    widget.add_files([str(p) for p in paths])
    settle(viewer)
    shoot(viewer, "dose_real")
    viewer.close()


def measured_pair():
    """The high-defocus sample with lines between two particles, measured."""
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
    return viewer, widget


def high_defocus():
    viewer, _ = measured_pair()
    shoot(viewer, "high_defocus")
    viewer.close()


def scrolled_to_end(widget):
    """Scroll a dock to its end (its tables, exports and history)."""
    bar = widget.root_native_widget.verticalScrollBar()
    bar.setValue(bar.maximum())


def grating_table():
    """Three magnifications in the table, SerialEM mag indices typed in, and the result
    with its stretch (MotionCor2's -Mag)."""
    from napari_emcal.grating import lattice_image

    viewer, widget = docked("grating_image", "Grating pixel size")
    for magnification, period, index in ((5000, 40.0, 17), (10000, 80.0, 18), (20000, 160.0, 19)):
        layer = viewer.add_image(
            lattice_image((512, 512), spacing_px=period, angle_deg=3.0, dose=50, seed=1),
            name=f"{magnification}x",
        )
        widget.set_layer(layer)
        widget.magnification.value = magnification
        widget.run()
        settle(viewer, lambda: widget._worker is None)
        row = widget.add_to_table()
        widget.table.update(row, mag_index=index)
    widget.refresh_table()
    scrolled_to_end(widget)
    shoot(viewer, "grating_table")
    viewer.close()


def diffraction():
    """The Au ring sample calibrated: rings and centre overlaid, values with ±, then the
    dock scrolled to the corrected profile and the table."""
    viewer, widget = docked("au_ring_pattern", "Camera length (rings)")
    widget.set_layer(viewer.layers[0])
    widget.run()
    settle(viewer, lambda: not widget.task.running)
    shoot(viewer, "diffraction")
    widget.add_to_table()
    bar = widget.native.verticalScrollBar()
    bar.setValue(int(0.55 * bar.maximum()))
    shoot(viewer, "diffraction_profile")
    viewer.close()


def high_defocus_table():
    """An accepted calibration in the table, kept in the history and plotted."""
    viewer, widget = measured_pair()
    widget.accept()
    widget.history.shown.value = True
    scrolled_to_end(widget)
    shoot(viewer, "high_defocus_table")
    viewer.close()


def dose():
    viewer, widget = docked("in_situ_series", "Dose table")
    widget.add_layers(list(viewer.layers))
    shoot(viewer, "dose")
    viewer.close()


def dose_tilt_series():
    """A simulated frame-based dose-symmetric tilt series read from its .mdoc, with the
    cumulative dose per tilt against tilt angle and acquisition order."""
    import tempfile

    import napari
    from qtpy.QtWidgets import QScrollArea

    from napari_emcal.dose.simulate import dose_symmetric_angles, write_frame_tilt_series_mdoc

    path = write_frame_tilt_series_mdoc(
        Path(tempfile.mkdtemp()) / "TS_07.mdoc",
        dose_symmetric_angles(60, 3, group=3),
        frame_dose=0.2,
        frames_per_tilt=15,
        frames_between=8,
    )
    viewer = napari.Viewer(title="dose tilt series")
    _, widget = viewer.window.add_plugin_dock_widget("napari-emcal", "Dose table")
    widget.add_files([path])
    settle(viewer, lambda: not widget.busy)
    window = viewer.window._qt_window
    window.resize(1366, 768)
    settle(viewer)
    canvas = widget.tilt_series.plot.canvas
    for area in window.findChildren(QScrollArea):
        if area.isAncestorOf(canvas):
            area.ensureWidgetVisible(canvas, 0, 0)
    shoot(viewer, "dose_tilt_series")
    viewer.close()


def live():
    """A simulated overfocused scan filling in as LiberTEM-live's Merlin simulator sends
    it (needs the real recording whose headers the simulated one copies)."""
    import sys
    import tempfile

    tests = Path(__file__).resolve().parents[1] / "tests"
    sys.path.insert(0, str(tests.parent))
    from tests.conftest import start_merlin_simulator, stop_simulator
    from tests.merlin_files import simulated_recording

    template = real_file("4d/merlin_4x2/001_4x2_6bit.hdr")  # its headers are copied
    if template is None:
        return
    header, _frames, truth = simulated_recording(
        template, Path(tempfile.mkdtemp()) / "s", scan=(64, 64)
    )
    process, data_port, control_port = start_merlin_simulator(header, (64, 64), dwell_us=3000)
    import napari

    try:
        viewer = napari.Viewer(title="live")
        _, widget = viewer.window.add_plugin_dock_widget("napari-emcal", "Overfocus calibration")
        widget.set_params(truth, update=False)
        panel = widget.live
        panel.enabled_box.value = True
        panel.data_port.value, panel.control_port.value = data_port, control_port
        panel.scan_shape.value = "64, 64"
        panel.start()
        # the first images, while the scan is still being recorded
        settle(viewer, lambda: widget.output_layer("shifted_sum") is not None, timeout=30)
        shoot(viewer, "live")
        settle(viewer, lambda: not widget.task.running)
        viewer.close()
    finally:
        stop_simulator(process)


def serialem():
    """The SerialEM sample series measured: records with their residuals and the plot."""
    viewer, widget = docked("serialem_series", "SerialEM calibrations")
    widget.run()
    settle(viewer, lambda: not widget.task.running)
    shoot(viewer, "serialem")
    scrolled_to_end(widget)
    shoot(viewer, "serialem_plot")
    viewer.close()


if __name__ == "__main__":
    import os
    import tempfile

    scratch = Path(tempfile.mkdtemp())  # never the user's autosave or history
    os.environ.setdefault("NAPARI_EMCAL_AUTOSAVE", str(scratch / "dose_table_autosave.json"))
    os.environ.setdefault("NAPARI_EMCAL_HISTORY", str(scratch / "history.sqlite"))
    import sys

    shots = (overfocus, overfocus_running, dataset_check, dataset_check_fpd, grating)
    shots += (grating_table, high_defocus, high_defocus_table, dose, dose_tilt_series)
    shots += (live, diffraction, serialem, grating_real, dose_real)
    chosen = set(sys.argv[1:])  # names of shots, or all
    for shot in shots:
        if not chosen or shot.__name__ in chosen:
            shot()
