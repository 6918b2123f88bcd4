"""Output layers, written once for every widget: ``<source> · <suffix>`` found, updated in
place or added once (docs/conventions.md), with robust contrast limits."""

from __future__ import annotations

import weakref

import numpy as np

from ..display import robust_limits

__all__ = [
    "calibration_of",
    "fit_view",
    "focus_space",
    "space_layers",
    "spaces_drawn_apart",
    "click_only",
    "with_calibration",
    "detector_space",
    "diverging",
    "scan_space",
    "follow_renames",
    "show_result",
    "output_layer",
    "while_present",
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
        follow_renames(viewer, source)
        return add(data, name=f"{source.name}{suffix}", **properties)
    # limits first: the new data are then drawn once, at the limits they come with
    if "contrast_limits" in properties:
        _set_if_changed(layer, "contrast_limits", properties["contrast_limits"])
    layer.data = data
    for key, value in properties.items():
        if key not in _CREATE_ONLY and key != "contrast_limits":
            _set_if_changed(layer, key, value)
    return layer


def _unit_text(unit) -> str:
    import pint

    if isinstance(unit, str):
        unit = pint.get_application_registry().Unit(unit)
    return f"{unit:~}"


def _set_if_changed(layer, key: str, value) -> None:
    """Set a layer property only when it changes: each set emits events that redraw the
    layer, its thumbnail and its controls (tens of ms per property on a slow machine,
    for every image of every live update)."""
    current = getattr(layer, key, None)
    try:
        if key == "metadata":
            same = current == value
        elif key == "units":
            same = tuple(map(_unit_text, current)) == tuple(map(_unit_text, value))
        elif key == "colormap":
            same = getattr(current, "name", current) == value
        elif isinstance(value, str | bool | int | float):
            same = current == value
        else:
            same = np.shape(current) == np.shape(value) and np.allclose(current, value)
    except (TypeError, ValueError):
        same = False
    if not same:
        setattr(layer, key, value)


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


#: Sources whose renames are followed already (weakly held: a removed layer goes).
_FOLLOWED: weakref.WeakSet = weakref.WeakSet()


def follow_renames(viewer, source) -> None:
    """Rename the outputs ``<source> · …`` with ``source``, so that a renamed dataset keeps
    its results instead of leaving them orphaned and getting a second set."""
    if source in _FOLLOWED:
        return
    _FOLLOWED.add(source)
    current = {"name": source.name}
    source_ref = weakref.ref(source)

    def renamed(event=None):
        layer = source_ref()
        if layer is None:
            return
        old, new = current["name"], layer.name
        current["name"] = new
        for other in list(viewer.layers):
            if other is not layer and other.name.startswith(f"{old} · "):
                other.name = new + other.name[len(old) :]

    source.events.name.connect(renamed)


def while_present(viewer, layers, on_result, on_gone):
    """``on_result`` wrapped to run only while every layer of ``layers`` is still in the
    viewer; else ``on_gone(message)`` (a result that arrives after its layer was removed is
    dropped with a status, never written into a layer that is gone)."""

    def run(value):
        gone = [layer for layer in layers if layer is None or layer not in viewer.layers]
        if gone:
            name = getattr(gone[0], "name", "the layer")
            on_gone(f"'{name}' was removed while it was processed: the result is dropped")
            return None
        return on_result(value)  # a generator is shown in steps (tasks.Steps)

    return run


def show_result(viewer, layer) -> None:
    """Make ``layer`` what the user sees: visible, on top of the layer list, selected."""
    if layer is None or layer not in viewer.layers:
        return
    layer.visible = True
    index = viewer.layers.index(layer)
    if index != len(viewer.layers) - 1:
        viewer.layers.move(index, len(viewer.layers))
    viewer.layers.selection.clear()
    viewer.layers.selection.add(layer)
    viewer.layers.selection.active = layer


def click_only(handler):
    """A mouse-drag callback that calls ``handler(layer, data_yx)`` on a click (press and
    release without moving), never at the start of a pan."""

    def callback(layer, event):
        position = layer.world_to_data(event.position)[-2:]
        dragged = False
        yield
        while event.type == "mouse_move":
            dragged = True
            yield
        if not dragged:
            handler(layer, position)

    return callback


# -- where a 4D dataset's 2D results go ---------------------------------------------------
# Scan-space images (one value per scan position) sit where the 4D layer's frames would;
# detector-space images and the 4D layer's frames sit right of them, never stacked on them.


def scan_space(source, every: int = 1) -> dict:
    """Layer properties of a scan-space image of the 4D ``source`` (every ``every``-th
    scan position): the scan's scale and units (nm from the scan step), at the origin."""
    return {
        "scale": np.asarray(source.scale[:2]) * every,
        "translate": np.zeros(2),
        "units": tuple(source.units[:2]),
    }


def detector_space(source, binning: int = 1) -> dict:
    """Layer properties of a detector-space image of the 4D ``source`` (``binning``
    detector pixels per side): the detector's scale and units, right of the scan-space
    images. The source's own frames move there too, the first time."""
    scan_width = source.data.shape[1] * float(source.scale[1])
    try:  # the scan's width in the detector axes' unit (nm -> µm), where they convert
        scan_width = (scan_width * source.units[1]).to(source.units[3]).magnitude
    except Exception:  # pint's DimensionalityError: pixels beside nm, placed as numbers
        pass
    beside = np.array([0.0, scan_width * 1.05])
    if not np.any(source.translate[2:]):
        source.translate = (*source.translate[:2], *beside)
    return {
        "scale": np.asarray(source.scale[2:]) * binning,
        "translate": beside,
        "units": tuple(source.units[2:]),
    }


def scan_space_layers(viewer, source) -> list:
    """The layers in ``viewer`` that show ``source``'s scan space (its outputs in nm)."""
    prefix = f"{source.name} · "
    return [
        layer
        for layer in viewer.layers
        if layer.name.startswith(prefix)
        and tuple(layer.units[-2:]) == tuple(source.units[:2])
        and layer.ndim == 2
    ]


def diverging(image) -> dict:
    """Display of a signed field (CoM, DPC): a diverging colormap with limits symmetric
    about zero, white at zero (robust to outliers)."""
    values = np.asarray(image)
    finite = values[np.isfinite(values)]
    bound = float(np.percentile(np.abs(finite), 99.5)) if finite.size else 1.0
    bound = bound if bound > 0 else 1.0
    return {"colormap": "bwr", "contrast_limits": (-bound, bound)}


# -- calibration of any image layer --------------------------------------------------------
def calibration_of(layer):
    """The calibration of an image layer whichever reader opened it (ours, napari's
    builtins, napari-rosettasciio): :func:`napari_emcal.io.images.layer_calibration` from
    its metadata, its source file (``layer.source.path``) or its scale and units; the
    result says where the pixel size came from (``.source``)."""
    from ..io.images import layer_calibration

    source = getattr(getattr(layer, "source", None), "path", None)
    return layer_calibration(
        layer.metadata, layer.scale, layer.units, source, getattr(layer.data, "shape", None)
    )


def with_calibration(layer) -> dict:
    """``layer.metadata`` with ``"emcal"`` (the layout the docks read) filled from
    :func:`calibration_of` when the reader that opened the layer put none there."""
    metadata = dict(layer.metadata)
    if not isinstance(metadata.get("emcal"), dict) or "instrument" not in metadata["emcal"]:
        found = calibration_of(layer)
        metadata["emcal"] = {
            **found.metadata,
            **(metadata.get("emcal") or {}),
            "calibration_source": found.source,
        }
    return metadata


# -- one space at a time in the main canvas -------------------------------------------------
def spaces_drawn_apart(source) -> bool:
    """Whether ``source``'s scan and detector axes are lengths of different units (nm at
    the specimen, µm at the detector): then they differ by 10^4-10^5 in size and the main
    canvas shows one space at a time (:func:`focus_space`); the other is in the detector
    view."""
    units = source.units
    return units[2] != units[0] and units[2].dimensionality == units[0].dimensionality


def space_layers(viewer, source, space: str) -> list:
    """The layers of ``source``'s ``space`` ("scan" or "detector"): its outputs
    ``<source> · …`` in that space's units, and for detector space the 4D layer itself."""
    wanted = tuple(source.units[:2]) if space == "scan" else tuple(source.units[2:])
    prefix = f"{source.name} · "
    found = [source] if space == "detector" else []
    for layer in viewer.layers:
        if layer is not source and layer.name.startswith(prefix):
            if tuple(layer.units[-2:]) == wanted:
                found.append(layer)
    return found


def focus_space(viewer, source, space: str) -> None:
    """Show ``source``'s ``space`` in the main canvas, fitted to the view; when the two
    spaces are drawn apart (:func:`spaces_drawn_apart`) the other one is hidden beside it.
    Otherwise both stay in view, as before."""
    if not spaces_drawn_apart(source):
        viewer.reset_view()
        return
    other = "detector" if space == "scan" else "scan"
    for layer in space_layers(viewer, source, other):
        layer.visible = False
    shown = space_layers(viewer, source, space)
    for layer in shown:
        if layer is not source:
            layer.visible = True
    images = [la for la in shown if la is not source and hasattr(la.data, "shape")]
    fit_view(viewer, images or [source])


def fit_view(viewer, layers) -> None:
    """Centre and zoom the 2D view on ``layers`` (their last two axes, in the world's
    unit). napari's ``reset_view(layers=...)`` cannot take 2D layers in a viewer with 4D
    ones."""
    if not layers:
        viewer.reset_view()
        return
    try:
        world = viewer.layers.extent.units[-1]
    except (TypeError, IndexError):
        world = None
    lows, highs = [], []
    for layer in layers:
        factor = 1.0
        if world is not None:
            try:
                factor = (1.0 * layer.units[-1]).to(world).magnitude
            except Exception:  # pixels beside lengths: numbers as they are
                factor = 1.0
        scale = np.asarray(layer.scale[-2:], float) * factor
        low = np.asarray(layer.translate[-2:], float) * factor - 0.5 * scale
        lows.append(low)
        highs.append(low + np.asarray(layer.data.shape[-2:]) * scale)
    low, high = np.min(lows, axis=0), np.max(highs, axis=0)
    size = np.maximum(high - low, 1e-12)
    try:
        canvas = np.asarray(viewer._canvas_size, float)
    except AttributeError:
        canvas = np.array([600.0, 600.0])
    viewer.camera.center = tuple((low + high) / 2)
    viewer.camera.zoom = 0.9 * float(np.min(canvas / size))
