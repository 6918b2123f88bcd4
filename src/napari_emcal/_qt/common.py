"""Small pieces every dock widget needs: layer choices, the displayed plane, tables, files."""

from __future__ import annotations

from pathlib import Path

from napari.layers import Image

__all__ = [
    "commit_on_enter",
    "displayed_plane",
    "message_label",
    "is_4d_image",
    "is_greyscale_image",
    "open_path",
    "save_path",
    "scan_shape_from_text",
    "table_value",
]


def is_greyscale_image(layer) -> bool:
    """An image layer the tools can measure: not RGB, at least 2D."""
    return isinstance(layer, Image) and not layer.rgb and layer.ndim >= 2


def is_4d_image(layer) -> bool:
    """A 4D STEM image layer (scan_y, scan_x, det_y, det_x)."""
    return isinstance(layer, Image) and layer.ndim == 4 and not layer.rgb


def displayed_plane(viewer, layer):
    """The 2D plane of ``layer`` the viewer shows (still lazy for Dask data)."""
    data = layer.data[0] if layer.multiscale else layer.data
    if layer.ndim > 2:
        step = viewer.dims.current_step[-layer.ndim : -2]
        index = tuple(min(int(s), n - 1) for s, n in zip(step, data.shape[:-2]))
        data = data[index]
    return data


def table_value(frame) -> dict:
    """magicgui ``Table`` contents of a pandas frame (missing values shown empty, rows
    numbered from 1). All three keys are needed: without ``index`` magicgui would read the
    dict as {column: values}."""
    shown = frame.astype(object).where(frame.notna(), "")
    return {
        "data": shown.values.tolist(),
        "index": list(range(1, len(frame) + 1)),
        "columns": list(frame.columns),
    }


def save_path(parent, title: str, default: str, filters: str = "CSV (*.csv)") -> Path | None:
    """Ask for a file to write; None when the user cancels."""
    from qtpy.QtWidgets import QFileDialog

    path, _ = QFileDialog.getSaveFileName(parent, title, default, filters)
    return Path(path) if path else None


def open_path(parent, title: str, filters: str = "CSV (*.csv)") -> Path | None:
    """Ask for a file to read; None when the user cancels."""
    from qtpy.QtWidgets import QFileDialog

    path, _ = QFileDialog.getOpenFileName(parent, title, "", filters)
    return Path(path) if path else None


def message_label(label: str = "", value: str = ""):
    """A magicgui Label for messages and results that wraps long text instead of widening
    the dock (a 500-character message keeps the dock's width)."""
    from magicgui import widgets
    from qtpy.QtWidgets import QSizePolicy

    widget = widgets.Label(label=label, value=value)
    widget.native.setWordWrap(True)
    widget.native.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
    widget.native.setMinimumWidth(0)
    return widget


def span(widget) -> None:
    """Let ``widget``, once in a labelled container, span the container's width: magicgui
    gives every child a label column as wide as the widest label, empty or not."""
    labeled = widget._labeled_widget()
    if labeled is not None:
        labeled._label_widget.visible = False


class ScrollableDock:
    """Mixin for a ``Container(scrollable=True)`` docked in napari: napari docks
    ``widget.native``, which for a scrollable magicgui container is the inner widget (the
    scroll area would be left out and the dock as tall as its content). Here ``native`` is
    the scroll area, so a dock fits a laptop screen and scrolls."""

    @property
    def native(self):
        return self.root_native_widget

    @property
    def content(self):
        """The widget that holds the controls' layout (inside the scroll area)."""
        return self._widget._mgui_get_native_widget()

    def show_hint(self, text: str) -> None:
        """The one-line hint of the next step, at the top of the dock."""
        hint = getattr(self, "_hint", None)
        if hint is None:
            hint = self._hint = message_label(value="")
            hint.native.setStyleSheet("font-style: italic;")
            self.insert(0, hint)
            span(hint)
        hint.value = f"Next: {text}"

    @property
    def hint(self) -> str:
        hint = getattr(self, "_hint", None)
        return hint.value if hint is not None else ""


def scan_shape_from_text(text: str) -> tuple[int, ...]:
    """The scan shape a user typed ("64, 32" or "64x32"): InvalidParameterError when it
    is not whole numbers."""
    from ..errors import InvalidParameterError

    try:
        return tuple(int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        raise InvalidParameterError(f"a scan shape is 'ny, nx'; got {text!r}") from None


def commit_on_enter(field, callback) -> None:
    """Call ``callback(text)`` when the user has edited the text ``field`` and presses Enter
    or leaves it: never per keystroke (typing "4, 2" passed through "4" and "4," before),
    and never for a value the widget sets itself."""
    edited = {"pending": False}

    def typed(_text):
        edited["pending"] = True

    def finished():
        if edited["pending"]:
            edited["pending"] = False
            callback(field.value)

    field.native.textEdited.connect(typed)  # user edits only, not setText
    field.native.editingFinished.connect(finished)
