"""The "High-defocus mag" dock widget: lines on two Shapes layers -> measure -> judge -> table.

Glue only: the lines drawn on ``<image> · line`` Shapes layers and the two image planes go
to :func:`measure` in a worker thread; the defocused image mapped back onto the near-focus
one appears as ``<defocused> · aligned`` to judge by blending or flipping; accepted results
go into a :class:`HighDefocusTable` shown as an editable table and a plot.
"""

from __future__ import annotations

import warnings

import numpy as np
from magicgui import widgets
from napari.utils.notifications import show_warning

from ..._qt.common import ScrollableDock, displayed_plane, is_greyscale_image, message_label
from ..._qt.layers import output_layer, robust_limits, upsert_layer, while_present
from ..._qt.provenance import FieldSources
from ..._qt.tables import FrameTable, SessionTableActions
from ..._qt.tasks import start_worker
from ...errors import CalibrationWarning, EmcalError, InvalidParameterError
from ...io.images import find_number, find_text
from ...units import from_si
from ..measure import HighDefocusResult, aligned_far, line_estimate, measure
from ..table import HighDefocusTable

__all__ = ["HighDefocusWidget", "defocus_um_from_metadata"]

LINE_SUFFIX = " · line"
ALIGNED_SUFFIX = " · aligned"
LINE_COLOURS = {"near": "#ffd24a", "far": "#4ad2ff"}


def defocus_um_from_metadata(metadata) -> float | None:
    """Defocus in µm recorded in layer metadata (``defocus_um``, or SerialEM's ``Defocus``
    in µm; values below 0.01 in magnitude are taken as metres, as Velox stores them)."""
    value = find_number(metadata, ("defocusum",))
    if value is not None:
        return value
    value = find_number(metadata, ("defocus",))
    if value is not None and abs(value) < 1e-2:
        value = from_si(value, "µm")
    return value


class HighDefocusWidget(ScrollableDock, SessionTableActions, widgets.Container):
    """Magnification and rotation of a defocused image relative to near focus, and a table."""

    table_type = HighDefocusTable
    csv_title = "high-defocus calibrations"
    csv_name = "high_defocus.csv"

    def __init__(self, napari_viewer):
        super().__init__(labels=True, scrollable=True)  # fits a laptop screen
        self.viewer = napari_viewer
        self.table = HighDefocusTable()
        self.result: HighDefocusResult | None = None
        self._measured: tuple | None = None  # (near layer, far layer) of the result
        self._stale = False  # the lines changed after the measurement
        self._worker = None

        self.near = widgets.ComboBox(
            label="Near focus",
            tooltip="the image near focus (the reference of magnification and rotation)",
            choices=self._image_choices,
        )
        self.far = widgets.ComboBox(
            label="Defocused",
            tooltip="the image at high defocus, of the same area",
            choices=self._image_choices,
        )
        self.draw_near = widgets.PushButton(
            text="Draw line on near-focus image",
            tooltip="draw a line between two features on the near-focus image",
        )
        self.draw_far = widgets.PushButton(
            text="Draw line on defocused image",
            tooltip="draw the line between the same two features, in the same order",
        )
        self.lines_label = widgets.Label(
            label="Lines",
            value="draw one line on each image, between the same two features, in the same order",
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
        self.blend = widgets.FloatSlider(
            label="Blend",
            value=0.5,
            min=0.0,
            max=1.0,
            step=0.05,
            tooltip="opacity of the aligned defocused image",
        )
        self.flip_button = widgets.PushButton(
            text="Flip aligned / near focus",
            tooltip="toggle between the aligned defocused image and the near-focus image",
            enabled=False,
        )
        self.defocus = widgets.FloatSpinBox(
            label="Defocus (µm)",
            value=-100.0,
            min=-1e5,
            max=1e5,
            step=10.0,
            tooltip="of the defocused image; negative = under",
        )
        self.intensity = widgets.LineEdit(
            label="Intensity",
            value="",
            tooltip="beam intensity as the microscope shows it "
            "(C2 %, Intensity, illuminated area); empty = unknown",
        )
        self.spot = widgets.SpinBox(
            label="Spot size", value=0, min=0, max=20, tooltip="0 = unknown"
        )
        self.probe = widgets.LineEdit(
            label="Probe mode", value="", tooltip="e.g. micro, nano, LM; empty = unknown"
        )
        self.accept_button = widgets.PushButton(
            text="Accept into table",
            tooltip="add the result (defocus µm, scale, rotation °) to the calibration table",
            enabled=False,
        )
        self.reject_button = widgets.PushButton(
            text="Reject", tooltip="discard the result", enabled=False
        )
        self.table_view = FrameTable(on_edit=self._cell_edited, after_edit=self.refresh_table)
        self.table_widget = self.table_view.widget
        self.remove_button = widgets.PushButton(
            text="Remove selected row", tooltip="remove the selected table rows"
        )
        self.export_button = widgets.PushButton(
            text="Export CSV…", tooltip="write the table to a CSV file"
        )
        self.import_button = widgets.PushButton(
            text="Import CSV…", tooltip="add the rows of a CSV file to the table"
        )
        self.status = message_label()
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
                self.blend,
                self.flip_button,
                self.defocus,
                self.intensity,
                self.spot,
                self.probe,
                self.accept_button,
                self.reject_button,
                self.table_widget,
                self.remove_button,
                self.export_button,
                self.import_button,
                self.status,
            ]
        )
        from .plot import CalibrationPlot  # matplotlib only once the widget is built

        self.plot = CalibrationPlot(napari_viewer)
        self.content.layout().addWidget(self.plot.canvas)

        self.draw_near.changed.connect(lambda: self.start_line("near"))
        self.draw_far.changed.connect(lambda: self.start_line("far"))
        self.measure_button.changed.connect(lambda: self.run())
        self.blend.changed.connect(self._blend_changed)
        self.flip_button.changed.connect(lambda: self.flip())
        self.accept_button.changed.connect(lambda: self.accept())
        self.reject_button.changed.connect(lambda: self.reject())
        self.far.changed.connect(self._far_changed)
        for field in (self.intensity, self.spot, self.probe, self.defocus):
            field.changed.connect(self.refresh_plot)
        self.field_sources = FieldSources(
            {
                "defocus": self.defocus,
                "intensity": self.intensity,
                "spot": self.spot,
                "probe": self.probe,
            }
        )
        self.remove_button.changed.connect(self._remove_selected)
        self.export_button.changed.connect(self._export_dialog)
        self.import_button.changed.connect(self._import_dialog)
        self.viewer.layers.events.inserted.connect(self._refresh_choices)
        self.viewer.layers.events.removed.connect(self._refresh_choices)
        self._default_pair()
        self.refresh_table()

    # -- images and lines -----------------------------------------------------------------
    def _image_choices(self, _widget=None):
        return [
            (layer.name, layer)
            for layer in self.viewer.layers
            if is_greyscale_image(layer) and not layer.name.endswith(ALIGNED_SUFFIX)
        ]

    def _refresh_choices(self, event=None):
        self.near.reset_choices()
        self.far.reset_choices()

    def _default_pair(self):
        """Two images: the one with the smaller recorded |defocus| is the near-focus one."""
        images = [layer for _, layer in self._image_choices()]
        if len(images) >= 2:
            self.set_images(*order_by_defocus(images[-2:]))

    def set_images(self, near, far) -> None:
        """Choose the near-focus and the defocused image layers (None leaves one as it is)."""
        self._refresh_choices()
        if near is not None:
            self.near.value = near
        if far is not None:
            self.far.value = far
        self._far_changed()

    def _far_changed(self, event=None):
        """Fill the defocus and beam setting from the defocused image's metadata, saying
        which values came from it; the others are marked as defaults."""
        layer = self.far.value
        if layer is None:
            return
        metadata = layer.metadata
        found = {
            "defocus": defocus_um_from_metadata(metadata),
            "intensity": find_number(metadata, ("intensity", "c2intensity", "illuminatedarea")),
            "spot": find_number(metadata, ("spot", "spotsize", "spotindex"), positive=True),
            "probe": find_text(metadata, ("probe", "probemode")),
        }
        with self.field_sources.quiet():
            if found["defocus"]:
                self.defocus.value = found["defocus"]
            if found["intensity"] is not None:
                self.intensity.value = f"{found['intensity']:g}"
            if found["spot"] is not None:
                self.spot.value = int(round(found["spot"]))
            if found["probe"] is not None:
                self.probe.value = found["probe"]
        self._recorded_defocus = found["defocus"] or None
        where = f"{layer.name}'s metadata"
        self.field_sources.filled({k: where for k, v in found.items() if v not in (None, 0)})

    def defocus_disagreement(self) -> str | None:
        """A warning when the typed defocus is not what the defocused image records."""
        recorded = getattr(self, "_recorded_defocus", None)
        typed = self.defocus.value
        if recorded is None or abs(typed - recorded) <= max(0.5, 0.02 * abs(recorded)):
            return None
        return (
            f"the typed defocus {typed:g} µm differs from the {recorded:g} µm that "
            f"{self.far.value.name} records: check which is right before accepting"
        )

    def line_layer(self, which: str, create: bool = False):
        """The Shapes layer for the ``"near"`` or ``"far"`` image's line (made on request)."""
        image = self.near.value if which == "near" else self.far.value
        if image is None:
            return None
        name = f"{image.name}{LINE_SUFFIX}"
        if name in self.viewer.layers:
            layer = self.viewer.layers[name]
        elif create:
            layer = self.viewer.add_shapes(
                ndim=2,
                name=name,
                shape_type="line",
                edge_color=LINE_COLOURS[which],
                edge_width=3,
                scale=image.scale[-2:],
                translate=image.translate[-2:],
            )
        else:
            return None
        # a layer made by hand or kept from an earlier widget updates the readout too
        layer.events.data.connect(self._lines_changed)  # ignored when already connected
        return layer

    def start_line(self, which: str) -> None:
        """Show that image alone with its line layer, ready to draw a line."""
        image = self.near.value if which == "near" else self.far.value
        other = self.far.value if which == "near" else self.near.value
        if image is None:
            self._error("Choose the near-focus and the defocused image layers first.")
            return
        if other is not None and other is not image:
            other.visible = False
            other_line = self.line_layer("far" if which == "near" else "near")
            if other_line is not None:
                other_line.visible = False
        aligned = self._aligned_layer()
        if aligned is not None:
            aligned.visible = False
        image.visible = True
        layer = self.line_layer(which, create=True)
        layer.visible = True
        self.viewer.layers.selection.active = layer
        layer.mode = "add_line"
        self.status.value = (
            f"draw a line on {image.name} from the first feature to the "
            "second (the last line drawn counts)"
        )

    def line(self, which: str) -> np.ndarray | None:
        """The last line drawn on that image, ((y0, x0), (y1, x1)) in its pixels, or None."""
        layer = self.line_layer(which)
        image = self.near.value if which == "near" else self.far.value
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

    def _lines_changed(self, event=None):
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
        self.lines_label.value = text
        if self.result is not None and not self._stale:
            self._stale = True
            self.accept_button.enabled = False
            self.status.value = "the lines changed: measure again before accepting"

    # -- measuring ------------------------------------------------------------------------
    def run(self) -> bool:
        """Measure in a worker; False (with a message) when something is missing."""
        near_layer, far_layer = self.near.value, self.far.value
        if near_layer is None or far_layer is None or near_layer is far_layer:
            self._error("Choose two different image layers: near focus and defocused.")
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
            self._error(
                f"Draw a line on the {' and the '.join(missing)} image first "
                "('Draw line on …'), between the same two features."
            )
            return False
        near_plane = displayed_plane(self.viewer, near_layer)
        far_plane = displayed_plane(self.viewer, far_layer)
        refine = self.refine.value

        def work():  # reading lazy planes happens here, off the GUI thread
            near, far = np.asarray(near_plane), np.asarray(far_plane)
            result = measure(near, far, near_line, far_line, refine=refine)
            return result, aligned_far(far, result, near.shape)

        self.measure_button.enabled = False
        self.status.value = f"measuring {far_layer.name} against {near_layer.name}…"
        self._worker = start_worker(
            work,
            while_present(
                self.viewer,
                [near_layer, far_layer],
                lambda value: self._show(near_layer, far_layer, *value),
                self._gone,
            ),
            lambda exc: self._error(str(exc)),
            self._finished,
        )
        return True

    def _gone(self, message: str) -> None:
        self.status.value = message

    def _finished(self):
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
        self._show_aligned(near_layer, far_layer, aligned)
        self.accept_button.enabled = self.reject_button.enabled = True
        self.flip_button.enabled = True
        self.status.value = " ".join(
            [
                *result.notes,
                "Blend or flip to judge the alignment, then Accept (with the "
                "defocus and beam setting) or Reject.",
            ]
        )
        self.refresh_plot()

    def _aligned_layer(self):
        far = self._measured[1] if self._measured else self.far.value
        return output_layer(self.viewer, far, ALIGNED_SUFFIX)

    def _show_aligned(self, near_layer, far_layer, aligned) -> None:
        layer = upsert_layer(
            self.viewer,
            far_layer,
            ALIGNED_SUFFIX,
            aligned,
            colormap="magenta",
            blending="translucent",
            scale=near_layer.scale[-2:],
            translate=near_layer.translate[-2:],
            contrast_limits=robust_limits(aligned),
            opacity=self.blend.value,
        )
        layer.visible = near_layer.visible = True
        far_layer.visible = False
        for which in ("near", "far"):
            line = self.line_layer(which)
            if line is not None:
                line.visible = which == "near"

    def _blend_changed(self, value=None):
        layer = self._aligned_layer()
        if layer is not None:
            layer.opacity = self.blend.value
            layer.visible = True

    def flip(self) -> None:
        """Show the aligned defocused image or the near-focus image, in turn."""
        layer = self._aligned_layer()
        if layer is None:
            return
        layer.visible = not layer.visible
        if layer.visible:
            layer.opacity = 1.0
        self.status.value = (
            "aligned defocused image" if layer.visible else "near-focus image"
        ) + " shown"

    # -- table -----------------------------------------------------------------------------
    def setting(self) -> dict:
        """The beam setting typed in the widget, as the table takes it."""
        text = self.intensity.value.strip()
        try:
            intensity = float(text) if text else None
        except ValueError:
            raise InvalidParameterError(
                f"intensity must be a number or empty; got {text!r}"
            ) from None
        return {
            "intensity": intensity,
            "spot": self.spot.value or None,
            "probe": self.probe.value.strip(),
        }

    def accept(self) -> int | None:
        """Put the measurement into the table with the typed defocus and setting."""
        if self.result is None or self._stale:
            self._error(
                "Measure first (the lines changed since the last measurement)."
                if self._stale
                else "Measure first."
            )
            return None
        near_layer, far_layer = self._measured
        disagreement = self.defocus_disagreement()
        if disagreement and not getattr(self, "_warned_defocus", False):
            self._warned_defocus = True  # said once; Accept again keeps the typed value
            self._error(disagreement + " (press Accept again to keep the typed value)")
            return None
        self._warned_defocus = False
        try:
            added = self.table.add_result(
                self.result,
                self.defocus.value,
                **self.setting(),
                near_image=near_layer.name,
                far_image=far_layer.name,
            )
        except EmcalError as exc:
            self._error(str(exc))
            return None
        self.accept_button.enabled = self.reject_button.enabled = False
        self.result = None
        self.refresh_table()
        self.status.value = f"accepted: {added.message}"
        if added.replaced is not None:
            show_warning(f"High-defocus table: {added.message}")
        return added.index

    def reject(self) -> None:
        """Discard the measurement and its aligned image."""
        layer = self._aligned_layer()
        if layer is not None:
            self.viewer.layers.remove(layer)
        if self._measured:
            self._measured[1].visible = True
        self.result, self._measured = None, None
        self.accept_button.enabled = self.reject_button.enabled = False
        self.flip_button.enabled = False
        self.result_label.value = "—"
        self.status.value = "rejected: adjust the lines and measure again"
        self.refresh_plot()

    def refresh_table(self) -> None:
        self.table_view.show(self.table.frame)
        self.refresh_plot()

    def refresh_plot(self, event=None) -> None:
        self._update_hint()
        try:
            setting = self.setting()
        except EmcalError as exc:
            self.status.value = str(exc)
            return
        pending = None
        if self.result is not None:
            pending = (self.defocus.value, self.result.scale, self.result.rotation_deg)
        probes = set(self.table.frame["probe"])
        probe = setting["probe"] if (setting["probe"] in probes or len(probes) != 1) else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CalibrationWarning)
            self.plot.update(
                self.table,
                intensity=setting["intensity"],
                spot=setting["spot"],
                probe=probe,
                pending=pending,
            )

    def _cell_edited(self, row: int, column: str, text: str) -> None:
        try:
            self.table.update(row, **{column: text})
        except EmcalError as exc:
            self._error(f"row {row + 1}, {column}: {exc}")


def order_by_defocus(layers):
    """(near, far): the smaller recorded |defocus| first; layer order when unknown."""
    values = [defocus_um_from_metadata(layer.metadata) for layer in layers]
    if all(v is not None for v in values) and abs(values[1]) < abs(values[0]):
        return layers[1], layers[0]
    return layers[0], layers[1]
