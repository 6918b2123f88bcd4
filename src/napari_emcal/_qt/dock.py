"""The shape every dock of this plugin shares: a scrollable magicgui container on a
viewer, with a status line, source-layer pickers that follow the layer list, one long
task at a time, and output layers named ``<source> · <suffix>``.

The status line and a running task's progress bar and Cancel sit in a footer below the
scrolling controls: they stay in view wherever the dock is scrolled (at 1366 x 768 the
controls of the overfocus dock are twice the screen's height)."""

from __future__ import annotations

from collections.abc import Callable

from magicgui import widgets
from napari.utils.notifications import show_error

from .common import ScrollableDock, message_label, span
from .layers import output_layer, upsert_layer, while_present
from .tasks import LongTask, task_controls

__all__ = ["ToolDock"]


class ToolDock(ScrollableDock, widgets.Container):
    """Base of the dock widgets: ``viewer``, ``status``, :meth:`error`, :meth:`layer_picker`,
    :meth:`long_task`, and output layers of the current source (:attr:`source_layer`)."""

    def __init__(self, viewer):
        super().__init__(labels=True, scrollable=True)  # fits a laptop screen
        self.viewer = viewer
        self.status = message_label()
        self._footer = widgets.Container(labels=False)
        self._footer.margins = (4, 2, 4, 2)
        self._footer.append(self.status)
        self._frame = _framed(self.root_native_widget, self._footer.native)
        # napari hands an open dock back as what it docked: let that be this container
        # (add_plugin_dock_widget on a dock already open), as for any magicgui widget
        self._frame._magic_widget = self

    @property
    def native(self):
        """What napari docks: the scrolling controls above the footer."""
        frame = getattr(self, "_frame", None)
        return frame if frame is not None else self.root_native_widget

    def _insert_widget(self, index: int, widget) -> None:
        if widget in self._pinned():
            return  # in the footer, always in view
        super()._insert_widget(index, widget)
        if isinstance(widget, widgets.Container):
            span(widget)  # a section (twin controls, calibration, table...): no label column

    # -- inputs ------------------------------------------------------------------------
    def layer_picker(self, label: str, tooltip: str, accepts: Callable) -> widgets.ComboBox:
        """A layer choice among the viewer's layers that ``accepts``; it follows layers
        being added, removed and renamed."""

        def choices(_widget=None):
            return [(layer.name, layer) for layer in self.viewer.layers if accepts(layer)]

        picker = widgets.ComboBox(label=label, tooltip=tooltip, choices=choices)
        for event in (self.viewer.layers.events.inserted, self.viewer.layers.events.removed):
            event.connect(lambda _event=None: picker.reset_choices())
        return picker

    def choose(self, picker: widgets.ComboBox, layer, accepts: Callable, wanted: str) -> bool:
        """Put ``layer`` in ``picker``, or say why it cannot be (``wanted``: what kind of
        layer the picker takes)."""
        if not accepts(layer):
            self.error(f"'{getattr(layer, 'name', layer)}' is not {wanted}.")
            return False
        picker.reset_choices()
        picker.value = layer
        return True

    def _pinned(self) -> tuple:
        """The widgets the footer holds (a dock listing them among its controls is fine)."""
        return tuple(
            w
            for w in (
                getattr(self, "status", None),
                getattr(self, "progress", None),
                getattr(self, "cancel_button", None),
            )
            if w is not None
        )

    # -- messages ----------------------------------------------------------------------
    def error(self, message: str) -> None:
        """Show ``message`` in the status line and as a napari notification."""
        self.status.value = f"⚠ {message}"
        show_error(message)

    # -- long tasks --------------------------------------------------------------------
    def long_task(self, cancel_tip: str = "stop the running task (Esc)", **options) -> LongTask:
        """The dock's one long task, with its progress bar and Cancel button
        (:attr:`progress`, :attr:`cancel_button`) for the dock to lay out."""
        self.progress, self.cancel_button = task_controls(cancel_tip)
        row = widgets.Container(layout="horizontal", labels=False)
        row.margins = (0, 0, 0, 0)
        row.extend([self.progress, self.cancel_button])
        self._footer.insert(0, row)
        return LongTask(
            self.native,
            self.progress,
            self.cancel_button,
            self.status,
            report_error=self.error,
            **options,
        )

    def while_present(self, on_result, *layers):
        """``on_result`` run only while ``layers`` (default: the source) are still there;
        else the status says the result was dropped."""

        def gone(message):
            self.status.value = message

        return while_present(self.viewer, layers or [self.source_layer], on_result, gone)

    # -- outputs -----------------------------------------------------------------------
    @property
    def source_layer(self):
        """The layer this dock's outputs are named after (``self.layer.value``)."""
        return self.layer.value

    def find_output(self, suffix: str):
        """The output layer ``<source><suffix>``, or None."""
        return output_layer(self.viewer, self.source_layer, suffix)

    def put_output(self, suffix: str, data, **properties):
        """Update ``<source><suffix>`` in place, or add it once; returns the layer."""
        return upsert_layer(self.viewer, self.source_layer, suffix, data, **properties)


def _framed(scroll, footer):
    """A widget holding ``scroll`` (the dock's controls) above ``footer``. It is at least
    as wide as the controls need (they grow as layers fill the pickers and results come
    in: the dock follows, as it did with the scroll area docked alone), and only as tall
    as the footer needs: the controls scroll."""
    from qtpy.QtCore import QEvent, QObject, QSize
    from qtpy.QtWidgets import QVBoxLayout, QWidget

    def controls_width(hint) -> int:
        bar = scroll.verticalScrollBar().sizeHint().width()
        return hint.width() + bar + 2 * scroll.frameWidth()

    class Frame(QWidget):
        def minimumSizeHint(self):
            content, below = scroll.widget().minimumSizeHint(), footer.minimumSizeHint()
            width = max(controls_width(content), below.width(), scroll.minimumWidth())
            return QSize(width, scroll.minimumSizeHint().height() + below.height())

        def sizeHint(self):
            content, below = scroll.widget().sizeHint(), footer.sizeHint()
            width = max(controls_width(content), self.minimumSizeHint().width())
            return QSize(width, scroll.sizeHint().height() + below.height())

    class Follow(QObject):
        """The controls' layout changed: the frame's hints change with it."""

        def eventFilter(self, watched, event):
            if event.type() == QEvent.Type.LayoutRequest:
                frame.updateGeometry()
            return False

    frame = Frame()
    layout = QVBoxLayout(frame)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(0)
    layout.addWidget(scroll, 1)
    layout.addWidget(footer)
    frame._follow = Follow(frame)
    scroll.widget().installEventFilter(frame._follow)
    return frame
