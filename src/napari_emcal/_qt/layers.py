"""Output layers, written once for every widget: ``<source> · <suffix>`` found, updated in
place or added once (docs/conventions.md), with robust contrast limits."""

from __future__ import annotations

import numpy as np

__all__ = [
    "output_layer",
    "recorded_calibration",
    "record_calibration",
    "robust_limits",
    "upsert_layer",
]

#: Key in a 4D layer's metadata under which an accepted overfocus calibration is kept, so
#: that the other tools (the dataset check) can use and compare it without importing
#: each other.
CALIBRATION_KEY = "emcal_calibration"

#: Properties that napari takes only when a layer is made, not as attributes later.
_CREATE_ONLY = ("border_width",)


def robust_limits(image, percentiles=(0.5, 99.5)) -> tuple[float, float]:
    """Contrast limits from percentiles of the finite values (a few hot pixels or a bright
    disk do not wash the image out); ``(0, 1)`` for an image with no finite value."""
    values = np.asarray(image)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return (0.0, 1.0)
    low, high = np.percentile(finite, percentiles)
    return (float(low), float(high if high > low else low + 1.0))


def output_layer(viewer, source, suffix: str):
    """The layer ``<source name><suffix>``, or None (also when ``source`` is None)."""
    if source is None:
        return None
    name = f"{source.name}{suffix}"
    return viewer.layers[name] if name in viewer.layers else None


def upsert_layer(viewer, source, suffix: str, data, *, kind: str = "image", **properties):
    """Update ``<source><suffix>`` in place, or add it once; returns the layer.

    ``properties`` (``scale``, ``contrast_limits``, ``colormap``, ``metadata``...) are
    given to a new layer and set on an existing one.
    """
    layer = output_layer(viewer, source, suffix)
    if layer is None:
        add = {"image": viewer.add_image, "points": viewer.add_points}[kind]
        return add(data, name=f"{source.name}{suffix}", **properties)
    layer.data = data
    for key, value in properties.items():
        if key not in _CREATE_ONLY:
            setattr(layer, key, value)
    return layer


def record_calibration(layer, scan_rotation: float, flip_y: bool, uncertainty: dict) -> None:
    """Keep an accepted calibration's scan rotation (degrees) and flip on ``layer``."""
    layer.metadata = {
        **layer.metadata,
        CALIBRATION_KEY: {
            "scan_rotation": float(scan_rotation),
            "flip_y": bool(flip_y),
            "scan_rotation_sigma": uncertainty.get("scan_rotation"),
        },
    }


def recorded_calibration(layer) -> dict | None:
    """The calibration :func:`record_calibration` kept on ``layer``, or None."""
    if layer is None:
        return None
    value = layer.metadata.get(CALIBRATION_KEY)
    return value if isinstance(value, dict) and "scan_rotation" in value else None
