"""The grating tool's layers: the autocorrelation, the lattice peaks found on it, and the
marker a user clicks.

The autocorrelation is drawn beside the measured image (to its right, tops aligned), not
over it, at the image's scale and in its units: one autocorrelation lag of one image pixel
is one image pixel on screen, so a lag reads in nm beside an image in nm and napari keeps
one unit per axis. The peaks and the marker are Points layers whose data coordinates are
lags (dy, dx) in image pixels, placed on the autocorrelation's centre."""

from __future__ import annotations

import weakref

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
    "showing_lattice",
]

AUTOCORRELATION = " · autocorrelation"
PEAKS = " · lattice peaks"
MARKER = " · marker"
SERIES_COLOURS = ("#ff5050", "#50a0ff", "#ffd24a")  # first direction, second, elsewhere
#: Gap between the image and its autocorrelation, in fractions of the image's width.
GAP = 0.05


def lag_frame(layer, origin, binning) -> tuple[np.ndarray, np.ndarray]:
    """(world position of zero lag, world size of one image pixel) of the autocorrelation
    of ``layer`` beside it; ``origin`` is the zero lag's index in the autocorrelation,
    whose pixels are ``binning`` image pixels."""
    pixel = np.asarray(layer.scale[-2:], float)
    low, high = np.asarray(layer.extent.world)[:, -2:]
    half = np.asarray(origin, float) * binning * pixel
    zero = np.array([low[0] + half[0], high[1] + GAP * (high[1] - low[1]) + half[1]])
    return zero, pixel


def _units(layer) -> tuple:
    """The units of the measured image's last two axes."""
    return tuple(layer.units[-2:])


def show_lattice(viewer, layer, result: PixelSizeResult, on_click):
    """The autocorrelation of ``layer`` and its lattice peaks (the starting peak larger,
    white); ``on_click(lag)`` for a click on the autocorrelation. Returns its layer."""
    steps = showing_lattice(viewer, layer, result, on_click)
    acf = next(steps)
    for _ in steps:
        pass
    return acf


def showing_lattice(viewer, layer, result: PixelSizeResult, on_click):
    """:func:`show_lattice` as a generator: yields the autocorrelation's layer once it is
    shown, then the peaks follow in the next step (``tasks.Steps``: one layer per turn of
    the event loop)."""
    binning = result.binning
    origin = np.asarray(result.origin, float)
    zero, pixel = lag_frame(layer, origin, binning)
    acf = upsert_layer(
        viewer,
        layer,
        AUTOCORRELATION,
        result.autocorrelation,
        scale=binning * pixel,
        translate=zero - origin * binning * pixel,
        units=_units(layer),
        colormap="magma",
        contrast_limits=_display_limits(result.autocorrelation),
        metadata={
            "emcal_lag": {
                "zero": zero.tolist(),
                "pixel": pixel.tolist(),
                "origin": origin.tolist(),
                "binning": binning,
            }
        },
    )
    # on the viewer, not the layer: the autocorrelation need not be the selected layer
    marked = (getattr(c, "_emcal_marker", None) for c in viewer.mouse_drag_callbacks)
    if not any(ref is not None and ref() is acf for ref in marked):
        viewer.mouse_drag_callbacks.append(_click_callback(viewer, acf, on_click))
    yield acf
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
        translate=zero,
        units=_units(layer),
    )


def rescale_lattice_layers(viewer, layer) -> None:
    """Place ``layer``'s autocorrelation, peaks and marker again in its current scale and
    units (after *Apply to layer*), beside it, keeping their lags in image pixels."""
    acf = output_layer(viewer, layer, AUTOCORRELATION)
    if acf is None:
        return
    frame = acf.metadata["emcal_lag"]
    binning, origin = frame["binning"], np.asarray(frame["origin"], float)
    zero, pixel = lag_frame(layer, origin, binning)
    frame.update(zero=zero.tolist(), pixel=pixel.tolist())
    units = _units(layer)
    acf.units = units
    acf.scale = binning * pixel
    acf.translate = zero - origin * binning * pixel
    for suffix in (PEAKS, MARKER):
        other = output_layer(viewer, layer, suffix)
        if other is not None:
            other.units = units
            other.scale = pixel
            other.translate = zero


def _click_callback(viewer, acf, on_click):
    reference = weakref.ref(acf)

    def clicked(_viewer, event):
        """A press on the autocorrelation places the marker (a lag in image pixels)."""
        layer = reference()
        if event.type != "mouse_press" or layer is None or layer not in viewer.layers:
            return
        low, high = np.asarray(layer.extent.world)[:, -2:]
        world = np.asarray(event.position[-2:], float)
        if not (np.all(world >= low) and np.all(world <= high)):
            return
        frame = layer.metadata["emcal_lag"]
        on_click((world - np.asarray(frame["zero"])) / np.asarray(frame["pixel"]))

    clicked._emcal_marker = reference
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
    acf = output_layer(viewer, layer, AUTOCORRELATION)
    frame = acf.metadata.get("emcal_lag") if acf is not None else None
    place = {"scale": frame["pixel"], "translate": frame["zero"]} if frame else {}
    place["units"] = _units(layer)
    marker = output_layer(viewer, layer, MARKER)
    if marker is None:
        viewer.add_points(
            data,
            name=f"{layer.name}{MARKER}",
            symbol="cross",
            face_color="#00ff7f",
            size=10.0 * binning,
            **place,
        )
    else:
        marker.data = data
        for key, value in place.items():
            setattr(marker, key, value)


def _display_limits(image: np.ndarray) -> tuple[float, float]:
    """Contrast limits that show the lattice peaks, not only the central one."""
    from ...display import LIMIT_SAMPLES

    values = np.ravel(image)
    values = values[:: -(-values.size // LIMIT_SAMPLES)]  # a regular subsample: enough
    values = values[values != 0]
    if values.size == 0:
        return (0.0, 1.0)
    low, high = np.percentile(values, [1, 99.9])
    return (float(low), float(max(high, low + 1e-6)))
