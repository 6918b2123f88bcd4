"""The overfocus dock's preview settings and the reduced data live updates read."""

from __future__ import annotations

import math

from magicgui import widgets

from ..preview import reduce_data

__all__ = ["PreviewControls"]

#: Preview defaults that keep a live update near 0.1 s (benchmarks/…responsiveness): a
#: binned detector of at most PREVIEW_DETECTOR px, a scan of at most PREVIEW_SCAN.
PREVIEW_DETECTOR = 48
PREVIEW_SCAN = 128


class PreviewControls(widgets.Container):
    """*Preview*, *Detector bin* and *Scan: every n-th*, and the reduced copy of the data
    they make (read once per layer and setting)."""

    def __init__(self):
        super().__init__(labels=True)
        self.margins = (0, 0, 0, 0)
        self._cache: tuple | None = None
        self.enabled_box = widgets.CheckBox(
            label="Preview (reduced data)",
            tooltip="live updates on a binned detector / every n-th scan position; the full "
            "pass runs on demand",
            value=True,
        )
        self.detector_bin = widgets.SpinBox(
            label="Detector bin",
            tooltip="detector pixels summed per side in the preview (1 = none)",
            value=1,
            min=1,
            max=64,
        )
        self.scan_every = widgets.SpinBox(
            label="Scan: every n-th",
            tooltip="scan positions used in the preview along each axis (1 = all)",
            value=1,
            min=1,
            max=64,
        )
        self.extend([self.enabled_box, self.detector_bin, self.scan_every])
        for w in (self.enabled_box, self.detector_bin, self.scan_every):
            w.changed.connect(self.forget)

    @property
    def factors(self) -> tuple[int, int]:
        """(detector bin, scan every n-th) of the live updates; (1, 1) without preview."""
        if not self.enabled_box.value:
            return (1, 1)
        return (self.detector_bin.value, self.scan_every.value)

    def suit(self, shape) -> None:
        """Defaults for a 4D array of ``shape`` that keep a live update near 0.1 s."""
        self.forget()
        self.detector_bin.value = max(1, math.ceil(max(shape[2:]) / PREVIEW_DETECTOR))
        self.scan_every.value = max(1, math.ceil(max(shape[:2]) / PREVIEW_SCAN))

    def forget(self, *_) -> None:
        """Drop the reduced copy (another layer, setting or scan shape)."""
        self._cache = None

    def data(self, layer):
        """The data live updates read: the layer's own (possibly lazy) array without
        reduction, else the reduced copy, or None while that must first be read
        (:meth:`read` then :meth:`keep`)."""
        if self.factors == (1, 1):
            return layer.data
        if self._cache is not None and self._cache[0] == self._key(layer):
            return self._cache[1]
        return None

    def _key(self, layer):
        return (id(layer.data), self.factors)

    def reader(self, layer):
        """``work(report)`` that reads the reduced copy of ``layer`` for :meth:`keep`."""
        key, data, factors = self._key(layer), layer.data, self.factors

        def read(report):
            return key, reduce_data(data, *factors, progress=report)

        return read

    def keep(self, read) -> None:
        """Keep what :meth:`reader`'s work returned."""
        self._cache = read
