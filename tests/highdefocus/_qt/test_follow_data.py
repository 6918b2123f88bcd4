"""The high-defocus dock follows the images in front of it and fits a laptop screen."""

import numpy as np
import pytest

from napari_emcal.highdefocus._qt.widget import HighDefocusWidget

pytestmark = pytest.mark.gui


def _seen(widget):
    setting = widget.setting
    return {
        "values": (
            setting.defocus.value,
            setting.intensity.value,
            setting.spot.value,
            setting.probe.value,
        ),
        "sources": dict(setting.field_sources.sources),
        "result": widget.result_label.value,
        "accept": widget.accept_button.enabled,
        "hint": widget.hint,
    }


def test_another_defocused_image_gives_what_a_fresh_dock_gives(make_napari_viewer):
    viewer = make_napari_viewer()
    rng = np.random.default_rng(0)
    near = viewer.add_image(rng.random((64, 64)), name="near")
    recorded = viewer.add_image(
        rng.random((64, 64)),
        name="recorded",
        metadata={"emcal": {"defocus_um": -250.0, "spot": 3, "probe_mode": "nano"}},
    )
    bare = viewer.add_image(rng.random((64, 64)), name="bare")
    widget = HighDefocusWidget(viewer)
    widget.set_images(near, recorded)
    assert widget.setting.spot.value == 3 and widget.setting.defocus.value == -250.0
    widget.set_images(None, bare)
    fresh = HighDefocusWidget(viewer)
    fresh.set_images(near, bare)
    assert _seen(widget) == _seen(fresh)


def test_dock_fits_520_px_with_its_images_chosen(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-emcal", "high_defocus_pair")
    _, widget = viewer.window.add_plugin_dock_widget("napari-emcal", "High-defocus mag")
    assert widget.near.value is not None and widget.far.value is not None
    assert widget.native.minimumSizeHint().width() <= 520
    assert widget.content.minimumSizeHint().width() <= 520
