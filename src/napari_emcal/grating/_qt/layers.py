"""The grating tool's layers: the autocorrelation (data coordinates = lags in pixels of
the measured image; drawn in the image's scale and units, so that a lag reads in nm
beside an image in nm and napari keeps one unit per axis), the lattice peaks found on it,
and the marker a user clicks."""

from __future__ import annotations

import numpy as np

from ..._qt.layers import output_layer, upsert_layer
from ..find import PixelSizeResult

__all__ = [
    "AUTOCORRELATION",
    "MARKER",
    "marker_lag",
    "place_marker",
    "rescale_lattice_layers",
    "show_lattice",
]

AUTOCORRELATION = " · autocorrelation"
PEAKS = " · lattice peaks"
MARKER = " · marker"
SERIES_COLOURS = ("#ff5050", "#50a0ff", "#ffd24a")  # first direction, second, elsewhere


def show_lattice(viewer, layer, result: PixelSizeResult, on_click):
    """The autocorrelation of ``layer`` and its lattice peaks (the starting peak larger,
    white); ``on_click(lag)`` for a click on the autocorrelation. Returns its layer."""
    binning = result.binning
    pixel, units = _image_axes(layer)
    acf = upsert_layer(
        viewer,
        layer,
        AUTOCORRELATION,
        result.autocorrelation,
        scale=pixel * binning,
        translate=-np.asarray(result.origin, float) * binning * pixel,
        units=units,
        colormap="magma",
        contrast_limits=_display_limits(result.autocorrelation),
        metadata={"emcal": {"role": "autocorrelation", "binning": binning}},
    )
    if not any(getattr(c, "_emcal_marker", False) for c in acf.mouse_drag_callbacks):
        acf.mouse_drag_callbacks.append(_click_callback(on_click))
    colours = [SERIES_COLOURS[s] for s in result.peak_series]
    sizes = np.full(len(result.peaks), 3.0 * binning)
    peaks, start = result.peaks, result.start_peak
    if start is not None:
        peaks = np.vstack([[start], peaks]) if len(peaks) else np.array([start])
        colours = ["#ffffff", *colours]
        sizes = np.concatenate([[8.0 * binning], sizes])
    upsert_layer(
        viewer,
        layer,
        PEAKS,
        np.reshape(peaks, (-1, 2)),
        kind="points",
        face_color=colours or "white",
        size=sizes,
        border_width=0,
        scale=pixel,
        units=units,
    )
    return acf


def _image_axes(layer) -> tuple[np.ndarray, tuple]:
    """The measured image's pixel (its last two axes' scale) and their units."""
    return np.asarray(layer.scale[-2:], float), tuple(layer.units[-2:])


def rescale_lattice_layers(viewer, layer) -> None:
    """Redraw ``layer``'s autocorrelation, peaks and marker in its current scale and units
    (after *Apply to layer*), keeping their lags in image pixels."""
    pixel, units = _image_axes(layer)
    acf = output_layer(viewer, layer, AUTOCORRELATION)
    if acf is not None:
        binning = acf.metadata.get("emcal", {}).get("binning", 1)
        origin = -np.asarray(acf.translate, float) / (np.asarray(acf.scale, float))
        acf.units = units
        acf.scale = pixel * binning
        acf.translate = -origin * pixel * binning
    for suffix in (PEAKS, MARKER):
        other = output_layer(viewer, layer, suffix)
        if other is not None:
            other.units = units
            other.scale = pixel


def _click_callback(on_click):
    def clicked(layer, event):
        """A press on the autocorrelation places the marker (a lag in image pixels)."""
        if event.type == "mouse_press":
            binning = layer.metadata.get("emcal", {}).get("binning", 1)
            pixel = np.asarray(layer.scale[-2:], float) / binning  # the image's pixel
            on_click(np.asarray(event.position[-2:], float) / pixel)

    clicked._emcal_marker = True
    return clicked


def marker_lag(viewer, layer) -> tuple[float, float] | None:
    """The lag (dy, dx) in image pixels that the user marked on ``layer``'s
    autocorrelation, or None."""
    marker = output_layer(viewer, layer, MARKER)
    if marker is None or len(marker.data) == 0:
        return None
    return tuple(float(v) for v in marker.data[-1][-2:])


def place_marker(viewer, layer, lag, binning: int = 1) -> None:
    """Put the marker of ``layer``'s autocorrelation at ``lag`` (dy, dx), image pixels."""
    data = np.reshape(np.asarray(lag, float), (1, 2))
    pixel, units = _image_axes(layer)
    marker = output_layer(viewer, layer, MARKER)
    if marker is None:
        viewer.add_points(
            data,
            name=f"{layer.name}{MARKER}",
            symbol="cross",
            face_color="#00ff7f",
            size=10.0 * binning,
            scale=pixel,
            units=units,
        )
    else:
        marker.units = units
        marker.scale = pixel
        marker.data = data


def _display_limits(image: np.ndarray) -> tuple[float, float]:
    """Contrast limits that show the lattice peaks, not only the central one."""
    values = image[image != 0]
    if values.size == 0:
        return (0.0, 1.0)
    low, high = np.percentile(values, [1, 99.9])
    return (float(low), float(max(high, low + 1e-6)))
