"""The "Grating pixel size" dock widget: run the finder, show its autocorrelation, keep a table.

Glue only: widget values -> :func:`find_pixel_size` in a worker thread -> layers and a
:class:`PixelSizeTable`. The autocorrelation layer is placed so that its world coordinates
are lags in pixels of the source image; the peaks and the marker use the same coordinates.
"""

from __future__ import annotations

import numpy as np
from magicgui import widgets

from ..._qt.common import ScrollableDock, displayed_plane, is_greyscale_image, message_label
from ..._qt.history import keep_in_history
from ..._qt.layers import output_layer, upsert_layer, while_present
from ..._qt.provenance import FieldSources, instrument_sources
from ..._qt.tables import FrameTable, SessionTableActions
from ..._qt.tasks import start_worker
from ...io.images import find_magnification
from ..find import MODES, PixelSizeResult, find_pixel_size
from ..table import PixelSizeTable

__all__ = ["GratingWidget"]

SERIES_COLOURS = ("#ff5050", "#50a0ff", "#ffd24a")  # first direction, second, elsewhere
OUTLIER_COLOUR = "#7a3a00"


class GratingWidget(ScrollableDock, SessionTableActions, widgets.Container):
    """Pixel size and grid angle of an image of a calibration grating, and a session table."""

    table_type = PixelSizeTable
    csv_title = "pixel sizes"
    csv_name = "pixel_sizes.csv"

    def __init__(self, napari_viewer):
        super().__init__(labels=True, scrollable=True)  # fits a laptop screen
        self.viewer = napari_viewer
        self.table = PixelSizeTable()
        self.result: PixelSizeResult | None = None
        self._result_layer = None  # the image layer the result belongs to
        self._worker = None

        self.layer = widgets.ComboBox(
            label="Image",
            tooltip="the image layer of the grating or crystal lattice",
            choices=self._layer_choices,
        )
        self.mode = widgets.ComboBox(
            label="Specimen",
            tooltip="what the image shows: a cross grating (one spacing), a lattice (two) "
            "or a mesh",
            choices=list(MODES),
            value="grating",
        )
        self.spacing = widgets.FloatSpinBox(
            label="Spacing (nm)",
            value=0.0,
            min=0.0,
            max=1e7,
            step=0.01,
            tooltip="specimen period in nm; 0 = the specimen's own (grating 462.96 nm); "
            "needed for 'lattice' and 'rectangular'",
        )
        self.spacing.native.setDecimals(5)  # 0.3905 nm must not become 0.39
        self.spacing2 = widgets.FloatSpinBox(
            label="Second spacing (nm)",
            value=0.0,
            min=0.0,
            max=1e7,
            step=0.01,
            visible=False,
            tooltip="the other period of a rectangular lattice, nm (e.g. a/√2 of a [110] "
            "perovskite)",
        )
        self.spacing2.native.setDecimals(5)
        self.mesh = widgets.FloatSpinBox(
            label="Mesh (per inch)",
            tooltip="lines per inch of the mesh (e.g. 2160 for a replica grating)",
            value=400.0,
            min=1.0,
            max=1e5,
            step=50.0,
            visible=False,
        )
        self.binned_size = widgets.SpinBox(
            label="Working size (px)", value=0, min=0, max=16384, step=128, tooltip="0 = automatic"
        )
        self.run_button = widgets.PushButton(
            text="Find pixel size", tooltip="measure the lattice by autocorrelation, in a worker"
        )
        self.marker_button = widgets.PushButton(
            text="Try again from marker",
            enabled=False,
            tooltip="click a peak in the autocorrelation layer first",
        )
        self.apply_button = widgets.PushButton(
            text="Apply to layer", enabled=False, tooltip="set the image layer's scale (nm)"
        )
        self.result_label = message_label("Result", "—")
        self.magnification = widgets.FloatSpinBox(
            label="Magnification",
            value=0.0,
            min=0.0,
            max=1e9,
            step=100.0,
            tooltip="nominal magnification of this image (read from metadata when recorded)",
        )
        self.field_sources = FieldSources({"magnification": self.magnification})
        self.add_button = widgets.PushButton(
            text="Add to table",
            tooltip="add this result (pixel size nm/px, rotation °) to the table below",
            enabled=False,
        )
        self.table_view = FrameTable()
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
                self.layer,
                self.mode,
                self.spacing,
                self.spacing2,
                self.mesh,
                self.binned_size,
                self.run_button,
                self.marker_button,
                self.apply_button,
                self.result_label,
                self.magnification,
                self.add_button,
                self.table_widget,
                self.remove_button,
                self.export_button,
                self.import_button,
                self.status,
            ]
        )

        self.mode.changed.connect(self._mode_changed)
        self.layer.changed.connect(self._layer_changed)
        self.run_button.changed.connect(lambda: self.run())
        self.marker_button.changed.connect(lambda: self.run(use_marker=True))
        self.apply_button.changed.connect(lambda: self.apply_to_layer())
        self.add_button.changed.connect(lambda: self.add_to_table())
        self.remove_button.changed.connect(self._remove_selected)
        self.export_button.changed.connect(self._export_dialog)
        self.import_button.changed.connect(self._import_dialog)
        self.viewer.layers.events.inserted.connect(self._refresh_choices)
        self.viewer.layers.events.removed.connect(self._refresh_choices)
        self._layer_changed()
        self.refresh_table()

    # -- inputs ---------------------------------------------------------------------------
    def _layer_choices(self, _widget=None):
        return [
            (layer.name, layer)
            for layer in self.viewer.layers
            if is_greyscale_image(layer) and not layer.name.endswith(" · autocorrelation")
        ]

    def _refresh_choices(self, event=None):
        self.layer.reset_choices()

    def set_layer(self, layer) -> None:
        """Choose the image to measure (e.g. from the menu action)."""
        self._refresh_choices()
        self.layer.value = layer

    def _update_hint(self) -> None:
        if self.layer.value is None:
            text = "open an image of a calibration grating or crystal lattice"
        elif self.result is None or not self.result.found:
            text = "set the specimen and its spacing, then Find pixel size"
        else:
            text = "Apply to layer, or Add to table to compare magnifications"
        self.show_hint(text)

    def _layer_changed(self, event=None):
        layer = self.layer.value
        self._update_hint()
        if layer is None:
            return
        # the image's own magnification, or none: never the previous image's
        recorded = instrument_sources(layer.metadata.get("emcal", layer.metadata))
        magnification = find_magnification(layer.metadata)
        with self.field_sources.quiet():
            self.magnification.value = magnification or 0.0
        self.field_sources.filled(
            {
                "magnification": recorded.get("magnification")
                or ("the layer's metadata" if magnification else None)
            }
        )

    def _mode_changed(self, mode=None):
        self.mesh.visible = self.mode.value == "mesh"
        self.spacing2.visible = self.mode.value == "rectangular"

    # -- running --------------------------------------------------------------------------
    @property
    def marker(self) -> tuple[float, float] | None:
        """The lag (dy, dx) in image pixels that the user clicked, or None."""
        layer = self._find_layer(" · marker")
        if layer is None or len(layer.data) == 0:
            return None
        return tuple(float(v) for v in layer.data[-1][-2:])

    def run(self, use_marker: bool = False) -> bool:
        """Measure the chosen layer in a worker; False when there is nothing to run."""
        layer = self.layer.value
        if layer is None:
            self._error("Choose an image layer first.")
            return False
        if self._worker is not None:
            self.status.value = "still measuring the previous image…"
            return False
        marker = self.marker if use_marker else None
        if use_marker and marker is None:
            self._error("Click a peak in the autocorrelation layer to place the marker first.")
            return False
        spacing = self.spacing.value or None
        if self.mode.value == "rectangular":
            spacing = (self.spacing.value, self.spacing2.value)
        metadata = layer.metadata.get("emcal", layer.metadata)
        kwargs = {
            "mode": self.mode.value,
            "marker": marker,
            "spacing_nm": spacing,
            "recorded_pixel_size_nm": metadata.get("pixel_size_nm"),
            "mesh": self.mesh.value if self.mode.value == "mesh" else None,
            "binned_size": self.binned_size.value or None,
        }
        plane = displayed_plane(self.viewer, layer)

        def work():  # reading a lazy plane happens here, off the GUI thread
            return find_pixel_size(np.asarray(plane), **kwargs)

        self.run_button.enabled = self.marker_button.enabled = False
        self.status.value = f"measuring {layer.name}…"
        self._worker = start_worker(
            work,
            while_present(
                self.viewer,
                [layer],
                lambda result: self._show(layer, result, retry=use_marker),
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
        self.run_button.enabled = True
        self.marker_button.enabled = self._find_layer(" · autocorrelation") is not None

    def _show(self, layer, result: PixelSizeResult, retry: bool = False) -> None:
        if retry and not result.found and self.result is not None and self.result.found:
            # a failed retry from a marker keeps the good result it started from
            self.status.value = f"{result.message}; the previous result is kept"
            return
        self.result, self._result_layer = result, layer
        self._update_hint()
        self._update_layers(layer, result)
        self.apply_button.enabled = self.add_button.enabled = result.found
        if result.found:
            a, b = result.spacing_px
            pa, pb = result.pixel_sizes_nm
            lines = [
                f"{result.pixel_size_nm:.5g} ± {result.pixel_size_sigma_nm:.2g} nm/px, "
                f"grid angle {result.angle_deg:.3f} ± {result.angle_sigma_deg:.2g}°",
                f"per direction {pa:.5g} / {pb:.5g} nm: anisotropy "
                f"{result.anisotropy_percent:.2f} %"
                + ("  ⚠ over 1 %" if result.anisotropy_percent > 1.0 else ""),
                f"spacing {a:.3f} / {b:.3f} px, {result.angle_between_deg:.2f}° apart; "
                f"{result.quality:.0%} of lattice peaks found",
            ]
            if result.recorded_pixel_size_nm:
                lines.append(
                    f"the file says {result.recorded_pixel_size_nm:.5g} nm "
                    f"({result.calibration_difference_percent:+.2f} %)"
                )
            self.result_label.value = "\n".join(lines)
            self.status.value = "; ".join(result.notes) or "done"
        else:
            self.result_label.value = "no lattice found"
            self.status.value = (
                f"{result.message}. Click a lattice peak in the "
                "autocorrelation and 'Try again from marker'."
            )

    def _update_layers(self, layer, result: PixelSizeResult) -> None:
        binning = result.binning
        translate = -np.asarray(result.origin, float) * binning
        acf = self._upsert(
            " · autocorrelation",
            layer,
            "image",
            result.autocorrelation,
            scale=(binning, binning),
            translate=translate,
            colormap="magma",
            contrast_limits=_display_limits(result.autocorrelation),
        )
        if self._clicked not in acf.mouse_drag_callbacks:
            acf.mouse_drag_callbacks.append(self._clicked)
        colours = [SERIES_COLOURS[s] for s in result.peak_series]
        sizes = np.full(len(result.peaks), 3.0 * binning)
        peaks, start = result.peaks, result.start_peak
        if start is not None:  # the starting peak, larger
            peaks = np.vstack([[start], peaks]) if len(peaks) else np.array([start])
            colours = ["#ffffff", *colours]
            sizes = np.concatenate([[8.0 * binning], sizes])
        self._upsert(
            " · lattice peaks",
            layer,
            "points",
            np.reshape(peaks, (-1, 2)),
            face_color=colours or "white",
            size=sizes,
            border_width=0,
        )
        self.viewer.layers.selection.active = acf

    def _find_layer(self, suffix: str):
        return output_layer(self.viewer, self._result_layer or self.layer.value, suffix)

    def _upsert(self, suffix, layer, kind, data, **kwargs):
        """Update the output layer in place, or create it once."""
        return upsert_layer(self.viewer, layer, suffix, data, kind=kind, **kwargs)

    def _clicked(self, layer, event):
        """A click on the autocorrelation places the marker (a lag in image pixels)."""
        if event.type != "mouse_press":
            return
        lag = np.asarray(event.position[-2:], float)
        source = self._result_layer or self.layer.value
        if source is None:
            return
        self.set_marker(source, lag)

    def set_marker(self, layer, lag) -> None:
        """Place the marker at a lag (dy, dx) in image pixels of ``layer``'s autocorrelation."""
        marker = self._find_layer(" · marker")
        data = np.reshape(np.asarray(lag, float), (1, 2))
        if marker is None:
            scale = self.result.binning if self.result else 1
            self.viewer.add_points(
                data,
                name=f"{layer.name} · marker",
                symbol="cross",
                face_color="#00ff7f",
                size=10.0 * scale,
            )
        else:
            marker.data = data
        self.marker_button.enabled = self._worker is None
        self.status.value = f"marker at lag ({lag[0]:.1f}, {lag[1]:.1f}) px"

    # -- results --------------------------------------------------------------------------
    def apply_to_layer(self) -> None:
        """Set the measured layer's pixel size (its last two axes) in nm."""
        if self.result is None or not self.result.found or self._result_layer is None:
            self._error("Find the pixel size first.")
            return
        layer = self._result_layer
        scale = list(layer.scale)
        scale[-2:] = [self.result.pixel_size_nm] * 2
        layer.scale = scale
        units = list(layer.units)
        units[-2:] = ["nm", "nm"]
        layer.units = units
        self.viewer.reset_view()
        self.status.value = f"{layer.name}: {self.result.pixel_size_nm:.5g} nm per pixel"

    def add_to_table(self) -> int | None:
        """Add the current result with the typed magnification; returns the row index."""
        if self.result is None or not self.result.found:
            self._error("Find the pixel size first.")
            return None
        magnification = self.magnification.value or None
        index = self.table.add(
            self.result,
            magnification=magnification,
            image=self._result_layer.name if self._result_layer else "",
        )
        self.refresh_table()
        result = self.result
        self.status.value = keep_in_history(
            "pixel_size",
            {"pixel_size_nm": result.pixel_size_nm, "angle_deg": result.angle_deg},
            {"pixel_size_nm": result.pixel_size_sigma_nm, "angle_deg": result.angle_sigma_deg},
            setting=f"magnification={magnification:g}" if magnification else "",
            source=self._result_layer.name if self._result_layer else "",
        )
        return index

    def refresh_table(self) -> None:
        """Redraw the table; outlier products and ambiguous rotations are highlighted."""
        frame = self.table.frame
        flagged = frame["product_outlier"] | frame["rotation_ambiguous"]
        self.table_view.show(frame, {row: OUTLIER_COLOUR for row in flagged[flagged].index})
        outliers = int(frame["product_outlier"].sum())
        if outliers:
            self.status.value = (
                f"{outliers} row(s) with pixel size x magnification off the "
                "median: check the magnification entered"
            )


def _display_limits(image: np.ndarray) -> tuple[float, float]:
    """Contrast limits that show the lattice peaks, not only the central one."""
    values = image[image != 0]
    if values.size == 0:
        return (0.0, 1.0)
    low, high = np.percentile(values, [1, 99.9])
    return (float(low), float(max(high, low + 1e-6)))
