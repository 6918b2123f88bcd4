"""Open napari with the simulated overfocus sample and the calibration widget docked."""

from __future__ import annotations


def main() -> None:
    import napari

    viewer = napari.Viewer(title="napari-emcal: overfocus calibration")
    viewer.open_sample("napari-emcal", "overfocus_grating")
    _, widget = viewer.window.add_plugin_dock_widget("napari-emcal", "Overfocus calibration")
    widget.set_layer(viewer.layers[0])
    napari.run()


if __name__ == "__main__":
    main()
