"""Open napari with the simulated overfocus sample and the calibration widget docked, and
calibrate it: the sharp ``shifted_sum`` is what the user sees once *Optimise* finishes."""

from __future__ import annotations


def main(calibrate: bool = True) -> None:
    import napari

    viewer = napari.Viewer(title="napari-emcal: overfocus calibration")
    viewer.open_sample("napari-emcal", "overfocus_grating")
    _, widget = viewer.window.add_plugin_dock_widget("napari-emcal", "Overfocus calibration")
    widget.set_layer(viewer.layers[0])
    if calibrate:  # from the nominal start: any rotation and flip are found
        widget.run_calibration(refine=True)
    napari.run()


if __name__ == "__main__":
    import sys

    main(calibrate="--no-calibrate" not in sys.argv[1:])
