"""Judging a high-defocus measurement by eye: the defocused image mapped back onto the
near-focus one (``<defocused> · aligned``), blended over it or flipped with it."""

from __future__ import annotations

from magicgui import widgets

from ..._qt.layers import output_layer, robust_limits, upsert_layer

__all__ = ["ALIGNED_SUFFIX", "AlignedView"]

ALIGNED_SUFFIX = " · aligned"


class AlignedView(widgets.Container):
    """*Blend* and *Flip aligned / near focus* for the aligned image of a dock (``host``:
    its viewer and status); ``far()`` gives the defocused layer the image belongs to."""

    def __init__(self, host, far):
        super().__init__(labels=True)
        self.margins = (0, 0, 0, 0)
        self.host, self._far = host, far
        self.blend = widgets.FloatSlider(
            label="Blend",
            value=0.5,
            min=0.0,
            max=1.0,
            step=0.05,
            tooltip="opacity of the aligned defocused image (0-1)",
        )
        self.flip_button = widgets.PushButton(
            text="Flip aligned / near focus",
            tooltip="toggle between the aligned defocused image and the near-focus image",
            enabled=False,
        )
        self.extend([self.blend, self.flip_button])
        self.blend.changed.connect(self._blend_changed)
        self.flip_button.changed.connect(lambda: self.flip())

    def layer(self):
        """The aligned image's layer, or None."""
        return output_layer(self.host.viewer, self._far(), ALIGNED_SUFFIX)

    def show(self, near_layer, far_layer, aligned, limits=None) -> None:
        """The aligned image over the near-focus one, the defocused image hidden;
        ``limits``: its contrast limits when known (else computed here)."""
        layer = upsert_layer(
            self.host.viewer,
            far_layer,
            ALIGNED_SUFFIX,
            aligned,
            colormap="magenta",
            blending="translucent",
            scale=near_layer.scale[-2:],
            translate=near_layer.translate[-2:],
            units=near_layer.units[-2:],
            contrast_limits=limits or robust_limits(aligned),
            opacity=self.blend.value,
        )
        layer.visible = near_layer.visible = True
        far_layer.visible = False
        self.flip_button.enabled = True

    def hide(self) -> None:
        layer = self.layer()
        if layer is not None:
            layer.visible = False

    def remove(self) -> None:
        """Drop the aligned image; the defocused image shows again."""
        layer = self.layer()
        if layer is not None:
            self.host.viewer.layers.remove(layer)
        if self._far() is not None:
            self._far().visible = True
        self.flip_button.enabled = False

    def _blend_changed(self, value=None):
        layer = self.layer()
        if layer is not None:
            layer.opacity = self.blend.value
            layer.visible = True

    def flip(self) -> None:
        """Show the aligned defocused image or the near-focus image, in turn."""
        layer = self.layer()
        if layer is None:
            return
        layer.visible = not layer.visible
        if layer.visible:
            layer.opacity = 1.0
        self.host.status.value = (
            "aligned defocused image" if layer.visible else "near-focus image"
        ) + " shown"
