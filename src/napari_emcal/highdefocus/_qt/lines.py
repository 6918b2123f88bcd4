"""The two lines a high-defocus measurement starts from: one on ``<image> · line`` Shapes
layers over each image, between the same two features, in the same order."""

from __future__ import annotations

import numpy as np

from ..measure import line_estimate

__all__ = ["LINE_SUFFIX", "LinePair"]

LINE_SUFFIX = " · line"
LINE_COLOURS = {"near": "#ffd24a", "far": "#4ad2ff"}


class LinePair:
    """The near-focus and defocused images' line layers of a dock (``host``: its viewer
    and its ``near``/``far`` pickers); ``on_change()`` after any line is edited."""

    def __init__(self, host, on_change):
        self.host = host
        self._on_change = on_change

    def image(self, which: str):
        return self.host.near.value if which == "near" else self.host.far.value

    def layer(self, which: str, create: bool = False):
        """The Shapes layer for the ``"near"`` or ``"far"`` image's line (made on request)."""
        image, viewer = self.image(which), self.host.viewer
        if image is None:
            return None
        name = f"{image.name}{LINE_SUFFIX}"
        if name in viewer.layers:
            layer = viewer.layers[name]
        elif create:
            layer = viewer.add_shapes(
                ndim=2,
                name=name,
                shape_type="line",
                edge_color=LINE_COLOURS[which],
                edge_width=3,
                scale=image.scale[-2:],
                translate=image.translate[-2:],
                units=image.units[-2:],  # one unit per axis: no napari units warning
            )
        else:
            return None
        # a layer made by hand or kept from an earlier widget updates the readout too
        layer.events.data.connect(self._on_change)  # ignored when already connected
        return layer

    def line(self, which: str) -> np.ndarray | None:
        """The last line drawn on that image, ((y0, x0), (y1, x1)) in its pixels, or None."""
        layer, image = self.layer(which), self.image(which)
        if layer is None or image is None:
            return None
        candidates = [
            data
            for data, kind in zip(layer.data, layer.shape_type)
            if kind in ("line", "path") and len(data) >= 2
        ]
        if not candidates:
            return None
        ends = np.asarray(candidates[-1], float)[[0, -1], -2:]
        world = ends * np.asarray(layer.scale[-2:]) + np.asarray(layer.translate[-2:])
        return (world - np.asarray(image.translate[-2:])) / np.asarray(image.scale[-2:])

    def readout(self) -> str:
        """The lines' lengths and, with both, the scale and rotation they give alone."""
        near, far = self.line("near"), self.line("far")
        parts = [
            f"{name} {np.hypot(*(ends[1] - ends[0])):.0f} px"
            for name, ends in (("near", near), ("defocused", far))
            if ends is not None
        ]
        text = ", ".join(parts) or "none drawn"
        if near is not None and far is not None and np.hypot(*(near[1] - near[0])) > 0:
            scale, rotation, _, _ = line_estimate(near, far)
            text += f"\nfrom the lines: scale {scale:.4f}, rotation {rotation:+.2f}°"
        return text

    def show_only(self, which: str) -> None:
        """That image alone with its line layer, ready to draw a line."""
        image = self.image(which)
        other_which = "far" if which == "near" else "near"
        other = self.image(other_which)
        if other is not None and other is not image:
            other.visible = False
            other_line = self.layer(other_which)
            if other_line is not None:
                other_line.visible = False
        image.visible = True
        layer = self.layer(which, create=True)
        layer.visible = True
        self.host.viewer.layers.selection.active = layer
        layer.mode = "add_line"

    def show_near_line_only(self) -> None:
        for which in ("near", "far"):
            line = self.layer(which)
            if line is not None:
                line.visible = which == "near"
