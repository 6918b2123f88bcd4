"""The "High-defocus mag" dock widget: lines on two Shapes layers -> measure -> judge -> table.

Glue only: the lines drawn on ``<image> · line`` Shapes layers and the two image planes go
to :func:`measure` in a worker thread; the defocused image mapped back onto the near-focus
one appears as ``<defocused> · aligned`` to judge by blending or flipping; accepted results
go into a :class:`HighDefocusTable` shown as an editable table and a plot.
"""

from __future__ import annotations

import numpy as np
from magicgui import widgets
from napari.utils.notifications import show_warning

from ..._qt.common import displayed_plane, is_greyscale_image, message_label
from ..._qt.dock import ToolDock
from ..._qt.history import DriftView, keep_in_history
from ..._qt.tables import SessionTable, TableExport
from ..._qt.tasks import Steps, start_worker
from ...display import robust_limits
from ...errors import EmcalError
from ...history import high_defocus_setting
from ..export import write_serialem_high_defocus
from ..measure import HighDefocusResult, aligned_far, measure
from ..table import HighDefocusTable
from .judge import ALIGNED_SUFFIX, AlignedView
from .lines import LinePair
from .setting import BeamSetting, defocus_um_from_metadata

SERIALEM_HIGH_DEFOCUS = TableExport(
    "Save for SerialEM…",
    "the rows with spot size, probe mode and SerialEM's intensity as HighFocusMagCal lines "
    "for SerialEMcalibrations.txt (defocus µm, scale, rotation °)",
    "high_focus_mag_cal.txt",
    write_serialem_high_defocus,
)

__all__ = ["HighDefocusWidget", "defocus_um_from_metadata"]


def _measurable(layer) -> bool:
    return is_greyscale_image(layer) and not layer.name.endswith(ALIGNED_SUFFIX)


class HighDefocusWidget(ToolDock):
    """Magnification and rotation of a defocused image relative to near focus, and a table."""

    def __init__(self, napari_viewer):
        super().__init__(napari_viewer)
        self.result: HighDefocusResult | None = None
        self._measured: tuple | None = None  # (near layer, far layer) of the result
        self._stale = False  # the lines changed after the measurement
        self._worker = None
        self.steps = Steps(self.native)  # a result shown one layer per event-loop turn

        self.near = self.layer_picker(
            "Near focus",
            "the image near focus (the reference of magnification and rotation)",
            _measurable,
        )
        self.far = self.layer_picker(
            "Defocused", "the image at high defocus, of the same area", _measurable
        )
        self.lines = LinePair(self, self._lines_changed)
        self.draw_near = widgets.PushButton(
            text="Draw line on near-focus image",
            tooltip="draw a line between two features on the near-focus image",
        )
        self.draw_far = widgets.PushButton(
            text="Draw line on defocused image",
            tooltip="draw the line between the same two features, in the same order",
        )
        self.lines_label = message_label(
            "Lines",
            "draw one line on each image, between the same two features, in the same order",
        )
        self.refine = widgets.CheckBox(
            text="Refine by image correlation",
            value=True,
            tooltip="refine the line estimate by correlating the two images",
        )
        self.measure_button = widgets.PushButton(
            text="Measure",
            tooltip="scale and rotation of the defocused image against near focus, in a worker",
        )
        self.result_label = message_label("Result", "—")
        self.aligned = AlignedView(
            self, lambda: self._measured[1] if self._measured else self.far.value
        )
        self.setting = BeamSetting()
        self.accept_button = widgets.PushButton(
            text="Accept into table",
            tooltip="add the result (defocus µm, scale, rotation °) to the calibration table",
            enabled=False,
        )
        self.reject_button = widgets.PushButton(
            text="Reject", tooltip="discard the result", enabled=False
        )
        self.session = SessionTable(
            self,
            HighDefocusTable(),
            title="high-defocus calibrations",
            csv_name="high_defocus.csv",
            editable=True,
            exports=(SERIALEM_HIGH_DEFOCUS,),
        )
        self.history = DriftView(napari_viewer, "high_defocus", self._history_setting)
        self.extend(
            [
                self.near,
                self.far,
                self.draw_near,
                self.draw_far,
                self.lines_label,
                self.refine,
                self.measure_button,
                self.result_label,
                self.aligned,
                self.setting,
                self.accept_button,
                self.reject_button,
                self.session,
                self.history.widgets,
                self.status,
            ]
        )
        from .plot import CalibrationPlot  # matplotlib only once the widget is built

        self.plot = CalibrationPlot(napari_viewer)
        self.content.layout().addWidget(self.plot.canvas)

        self.draw_near.changed.connect(lambda: self.start_line("near"))
        self.draw_far.changed.connect(lambda: self.start_line("far"))
        self.measure_button.changed.connect(lambda: self.run())
        self.accept_button.changed.connect(lambda: self.accept())
        self.reject_button.changed.connect(lambda: self.reject())
        self.far.changed.connect(self._far_changed)
        self.near.changed.connect(self._images_changed)
        self.setting.changed.connect(self.refresh_plot)
        self._default_pair()
        self.refresh_table()

    # -- images and lines -----------------------------------------------------------------
    @property
    def table(self) -> HighDefocusTable:
        return self.session.table

    def _default_pair(self):
        """Two images: the one with the smaller recorded |defocus| is the near-focus one."""
        images = [layer for layer in self.viewer.layers if _measurable(layer)]
        if len(images) >= 2:
            self.set_images(*order_by_defocus(images[-2:]))

    def set_images(self, near, far) -> None:
        """Choose the near-focus and the defocused image layers (None leaves one as it is)."""
        for picker, layer in ((self.near, near), (self.far, far)):
            picker.reset_choices()
            if layer is not None:
                picker.value = layer
        self._far_changed()

    def _far_changed(self, event=None):
        if self.far.value is not None:
            self.setting.fill_from(self.far.value)
        self._images_changed()

    def _images_changed(self, event=None) -> None:
        """Another image pair: a measurement of the previous pair is no longer offered
        (its aligned image is removed), and a measurement still running is dropped."""
        self._generation = getattr(self, "_generation", 0) + 1
        if self.result is not None or self._measured is not None:
            self.aligned.remove()
        self.result, self._measured, self._stale = None, None, False
        self.accept_button.enabled = self.reject_button.enabled = False
        self.result_label.value = "—"
        self.lines_label.value = self.lines.readout()
        self._update_hint()

    def line_layer(self, which: str, create: bool = False):
        """The Shapes layer for the ``"near"`` or ``"far"`` image's line (made on request)."""
        return self.lines.layer(which, create)

    def line(self, which: str) -> np.ndarray | None:
        """The last line drawn on that image, ((y0, x0), (y1, x1)) in its pixels, or None."""
        return self.lines.line(which)

    def start_line(self, which: str) -> None:
        """Show that image alone with its line layer, ready to draw a line."""
        image = self.lines.image(which)
        if image is None:
            self.error("Choose the near-focus and the defocused image layers first.")
            return
        self.aligned.hide()
        self.lines.show_only(which)
        self.status.value = (
            f"draw a line on {image.name} from the first feature to the "
            "second (the last line drawn counts)"
        )

    def _lines_changed(self, event=None):
        self.lines_label.value = self.lines.readout()
        if self.result is not None and not self._stale:
            self._stale = True
            self.accept_button.enabled = False
            self.status.value = "the lines changed: measure again before accepting"

    # -- measuring ------------------------------------------------------------------------
    def run(self) -> bool:
        """Measure in a worker; False (with a message) when something is missing."""
        near_layer, far_layer = self.near.value, self.far.value
        if near_layer is None or far_layer is None or near_layer is far_layer:
            self.error("Choose two different image layers: near focus and defocused.")
            return False
        if self._worker is not None:
            self.status.value = "still measuring…"
            return False
        near_line, far_line = self.line("near"), self.line("far")
        missing = [
            name
            for name, line in (("near-focus", near_line), ("defocused", far_line))
            if line is None
        ]
        if missing:
            self.error(
                f"Draw a line on the {' and the '.join(missing)} image first "
                "('Draw line on …'), between the same two features."
            )
            return False
        near_plane = displayed_plane(self.viewer, near_layer)
        far_plane = displayed_plane(self.viewer, far_layer)
        refine = self.refine.value
        generation = self._generation

        def show(value):
            if generation == self._generation:  # else other images are chosen now
                self.steps.show(self._showing(near_layer, far_layer, *value))

        def work():  # reading lazy planes happens here, off the GUI thread
            near, far = np.asarray(near_plane), np.asarray(far_plane)
            result = measure(near, far, near_line, far_line, refine=refine)
            # float32 and its display limits here: napari would convert a float64 image
            # and the limits sort its values, both on the GUI thread
            aligned = aligned_far(far, result, near.shape).astype(np.float32, copy=False)
            return result, (aligned, robust_limits(aligned))

        self.measure_button.enabled = False
        self.status.value = f"measuring {far_layer.name} against {near_layer.name}…"
        self._worker = start_worker(
            work,
            self.while_present(show, near_layer, far_layer),
            lambda exc: self.error(str(exc)),
            self._finished,
        )
        return True

    def _finished(self):
        self.steps.after(self._ended)  # once the result is on screen

    def _ended(self):
        self._worker = None
        self.measure_button.enabled = True

    def _update_hint(self) -> None:
        if self.near.value is None or self.far.value is None:
            text = "open a near-focus and a defocused image of the same area"
        elif self.result is None:
            text = "draw one line on each image between the same two features, then Measure"
        else:
            text = "Accept into table (with the defocus and illumination) or Reject"
        self.show_hint(text)

    def _show(self, near_layer, far_layer, result: HighDefocusResult, aligned) -> None:
        for _ in self._showing(near_layer, far_layer, result, aligned):
            pass

    def _showing(self, near_layer, far_layer, result: HighDefocusResult, aligned):
        """:meth:`_show` as a generator: the aligned image, the lines and the plot in
        separate turns of the event loop (``tasks.Steps``). ``aligned``: the image, or
        (image, contrast limits) computed in the worker."""
        self.result, self._measured, self._stale = result, (near_layer, far_layer), False
        self._update_hint()
        self.result_label.value = (
            f"scale {result.scale:.4f}, rotation {result.rotation_deg:+.3f}°, "
            f"score {result.score:.3f}\nlines alone: {result.line_scale:.4f}, "
            f"{result.line_rotation_deg:+.3f}°, score {result.line_score:.3f}"
            + (
                f"\n{result.patches} regions, residual {result.residual_px:.2f} px, overlap "
                f"{result.overlap:.0%}"
                if result.refined
                else "\n(not refined)"
            )
        )
        image, limits = aligned if isinstance(aligned, tuple) else (aligned, None)
        self.aligned.show(near_layer, far_layer, image, limits)
        yield
        self.lines.show_near_line_only()
        yield
        self.accept_button.enabled = self.reject_button.enabled = True
        self.status.value = " ".join(
            [
                *result.notes,
                "Blend or flip to judge the alignment, then Accept (with the "
                "defocus and beam setting) or Reject.",
            ]
        )
        self.refresh_plot()

    def flip(self) -> None:
        """Show the aligned defocused image or the near-focus image, in turn."""
        self.aligned.flip()

    # -- table -----------------------------------------------------------------------------
    def accept(self) -> int | None:
        """Put the measurement into the table with the typed defocus and setting."""
        if self.result is None or self._stale:
            self.error(
                "Measure first (the lines changed since the last measurement)."
                if self._stale
                else "Measure first."
            )
            return None
        near_layer, far_layer = self._measured
        disagreement = self.setting.defocus_disagreement()
        if disagreement and not getattr(self, "_warned_defocus", False):
            self._warned_defocus = True  # said once; Accept again keeps the typed value
            self.error(disagreement + " (press Accept again to keep the typed value)")
            return None
        self._warned_defocus = False
        try:
            added = self.table.add_result(
                self.result,
                self.setting.defocus.value,
                **self.setting.value(),
                # the file, when the layer came from one: its format sets the rotation's
                # sign in SerialEM's camera axes (highdefocus/export.py)
                near_image=str(near_layer.source.path or near_layer.name),
                far_image=str(far_layer.source.path or far_layer.name),
            )
        except EmcalError as exc:
            self.error(str(exc))
            return None
        self.accept_button.enabled = self.reject_button.enabled = False
        self.result = None
        self.refresh_table()
        values, setting = self.table.history_entry(added.index)
        kept = keep_in_history(
            "high_defocus",
            values,
            {},
            setting=setting,
            source=f"{near_layer.name} / {far_layer.name}",
        )
        self.history.refresh()
        self.status.value = f"accepted: {added.message}; {kept}"
        if added.replaced is not None:
            show_warning(f"High-defocus table: {added.message}")
        return added.index

    def _history_setting(self) -> str:
        """The history's setting of the typed defocus and beam setting."""
        try:
            beam = self.setting.value()
        except EmcalError:
            beam = {}
        return high_defocus_setting(self.setting.defocus.value, **beam)

    def reject(self) -> None:
        """Discard the measurement and its aligned image."""
        self.aligned.remove()
        self.result, self._measured = None, None
        self.accept_button.enabled = self.reject_button.enabled = False
        self.result_label.value = "—"
        self.status.value = "rejected: adjust the lines and measure again"
        self.refresh_plot()

    def refresh_table(self) -> None:
        self.session.view.show(self.table.frame)
        self.refresh_plot()

    def refresh_plot(self, event=None) -> None:
        self._update_hint()
        try:
            setting = self.setting.value()
        except EmcalError as exc:
            self.status.value = str(exc)
            return
        self.plot.show(self.table, setting, self.setting.defocus.value, self.result)


def order_by_defocus(layers):
    """(near, far): the smaller recorded |defocus| first; layer order when unknown."""
    values = [defocus_um_from_metadata(layer.metadata) for layer in layers]
    if all(v is not None for v in values) and abs(values[1]) < abs(values[0]):
        return layers[1], layers[0]
    return layers[0], layers[1]
