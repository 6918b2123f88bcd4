"""The 4D dataset a dock works on: the layer, which dataset of its HDF5 file, and the
scan shape its frames are arranged in."""

from __future__ import annotations

from magicgui import widgets
from napari.utils.notifications import show_info
from psygnal import Signal

from ..errors import EmcalError
from ..io.readers import open_4d, reshape_scan, sample_contrast_limits
from ..settings import load_settings
from .common import commit_on_enter, is_4d_image, scan_shape_from_text

__all__ = ["Source4D"]

A_4D_LAYER = "a 4D image layer (scan_y, scan_x, det_y, det_x); pick a 4D STEM dataset"


def data_folders() -> list[str]:
    """The folders besides a file's own that the user allows its linked data to come from."""
    return load_settings()["data_folders"]


class Source4D(widgets.Container):
    """*4D dataset*, *HDF5 dataset* (shown when the file holds several) and *Scan shape*
    (applies on Enter).

    ``layer.changed`` fires for another layer; :attr:`reopened` when the layer now holds
    another dataset of its file (new data and metadata); :attr:`reshaped` when its frames
    were arranged in another scan shape; :attr:`replaced` when something else gave the
    layer new data (a script, another plugin; not a live acquisition filling it in).
    """

    reopened = Signal()
    reshaped = Signal()
    replaced = Signal()

    def __init__(self, dock, tooltip: str):
        super().__init__(labels=True)
        self.margins = (0, 0, 0, 0)
        self.dock = dock
        self.layer = dock.layer_picker("4D dataset", tooltip, is_4d_image)
        self.dataset = widgets.ComboBox(
            label="HDF5 dataset",
            choices=self._dataset_choices,
            visible=False,
            tooltip="the file holds several 3D/4D datasets",
        )
        self.scan_shape = widgets.LineEdit(
            label="Scan shape",
            value="",
            tooltip="ny, nx (positions): rearrange the frames into this scan; applies on Enter",
        )
        self.extend([self.layer, self.dataset, self.scan_shape])
        self._watched = None  # the layer whose data events are followed
        self._own_change = False  # this section is giving the layer new data
        self.layer.changed.connect(self._show_layer)
        dock.viewer.layers.events.removed.connect(self._removed)
        commit_on_enter(self.scan_shape, self._reshape)
        self.dataset.changed.connect(self._reopen)
        self._show_layer()  # the picker may hold a layer already

    @property
    def value(self):
        """The 4D layer, or None."""
        return self.layer.value

    def set_layer(self, layer) -> bool:
        return self.dock.choose(self.layer, layer, is_4d_image, A_4D_LAYER)

    def _metadata(self) -> dict:
        layer = self.layer.value
        return layer.metadata.get("emcal", {}) if layer is not None else {}

    def _dataset_choices(self, _widget=None) -> list[str]:
        """The 3D/4D datasets of the layer's HDF5 file (empty for other formats)."""
        return list(self._metadata().get("datasets") or [])

    def _watch(self, layer) -> None:
        if self._watched is not None:
            self._watched.events.data.disconnect(self._data_changed)
        self._watched = layer
        if layer is not None:
            layer.events.data.connect(self._data_changed)

    def _removed(self, event) -> None:
        """The layer worked on was removed: the picker may not say so when no other 4D
        layer is left (it holds None without a change event); the dock must hear it."""
        if event.value is self._watched:
            self._watch(None)
            self.layer.changed.emit(self.layer.value)

    def _data_changed(self, event=None) -> None:
        layer = self.layer.value
        if self._own_change or layer is None or layer.metadata.get("emcal", {}).get("live"):
            return
        self._show_layer()
        self.replaced.emit()

    def _show_layer(self, event=None) -> None:
        layer = self.layer.value
        if layer is not self._watched:
            self._watch(layer)
        if layer is None:
            return
        with self.scan_shape.changed.blocked():
            self.scan_shape.value = f"{layer.data.shape[0]}, {layer.data.shape[1]}"
        datasets = self._dataset_choices()
        with self.dataset.changed.blocked():
            self.dataset.reset_choices()
            if self._metadata().get("dataset") in datasets:
                self.dataset.value = self._metadata()["dataset"]
        self.dataset.visible = len(datasets) > 1

    def _reshape(self, text: str) -> None:
        layer = self.layer.value
        if layer is None:
            return
        try:
            shape = scan_shape_from_text(text)
            self._own_change = True
            layer.data = reshape_scan(layer.data, shape)
        except EmcalError as exc:
            self.dock.error(f"Scan shape: {exc}")
            return
        finally:
            self._own_change = False
        self.reshaped.emit()

    def _reopen(self, name=None) -> None:
        """Re-open the layer's HDF5 file on another of its 3D/4D datasets (lazily)."""
        layer, md = self.layer.value, self._metadata()
        if not name or name == md.get("dataset"):
            return
        try:
            ds = open_4d(md["source"], dataset=name, allow_dirs=data_folders())
            limits = sample_contrast_limits(ds.data)
        except EmcalError as exc:
            self.dock.error(str(exc))
            return
        for note in ds.notes:
            if "several" not in note:
                show_info(note)
        layer.metadata = {**layer.metadata, "emcal": ds.metadata}
        self._own_change = True
        try:
            layer.data = ds.data
        finally:
            self._own_change = False
        layer.contrast_limits = limits
        self._show_layer()
        self.reopened.emit()
