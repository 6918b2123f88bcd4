"""Screenshots of real files opened through this plugin's reader, and of the overfocus
sample with its dock (scan space in nm), at 1366x768.

Run: xvfb-run -a -s "-screen 0 1366x768x24" .venv/bin/python scripts/screenshots_reader.py
Writes docs/screenshots/reader_*.png; real files come from ../shared/data/real (skipped
when absent).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from screenshots import settle, shoot

REAL = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "real" / "images"


def real_image(relative: str, name: str) -> None:
    import napari

    path = REAL / relative
    if not path.exists():
        print("skipped (absent):", path)
        return
    viewer = napari.Viewer(title=f"{path.name} (napari-emcal reader)")
    viewer.open(str(path), plugin="napari-emcal")
    viewer.scale_bar.visible = True
    viewer.reset_view()
    _, widget = viewer.window.add_plugin_dock_widget("napari-emcal", "Grating pixel size")
    widget.layer.value = viewer.layers[-1]
    shoot(viewer, name)
    viewer.close()


def overfocus_units() -> None:
    import napari

    viewer = napari.Viewer(title="overfocus sample: scan space in nm")
    viewer.open_sample("napari-emcal", "overfocus_grating")
    viewer.scale_bar.visible = True
    _, widget = viewer.window.add_plugin_dock_widget("napari-emcal", "Overfocus calibration")
    widget.set_layer(viewer.layers[0])
    settle(viewer, lambda: not widget.task.running)
    settle(viewer, lambda: f"{viewer.layers[0].name} · shifted_sum" in viewer.layers)
    shoot(viewer, "reader_overfocus_units")
    viewer.close()


def dataset_check_units() -> None:
    import napari

    viewer = napari.Viewer(title="overfocus sample: dataset check, scan space in nm")
    viewer.open_sample("napari-emcal", "overfocus_grating")
    viewer.scale_bar.visible = True
    _, widget = viewer.window.add_plugin_dock_widget("napari-emcal", "4D dataset check")
    widget.set_layer(viewer.layers[0])
    widget.run()
    settle(viewer, lambda: not widget.task.running)
    shoot(viewer, "reader_dataset_check_units")
    viewer.close()


if __name__ == "__main__":
    real_image("tia_srtio3/16_STOimage_1.ser", "reader_tia_ser")
    real_image("tvips/TVIPS_bin4.tif", "reader_tvips_tif")
    overfocus_units()
    dataset_check_units()
