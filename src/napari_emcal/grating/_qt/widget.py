"""The "Grating pixel size" dock widget: run the finder, show its autocorrelation, keep a table.

Glue only: widget values -> :func:`find_pixel_size` in a worker thread -> layers and a
:class:`PixelSizeTable`. The autocorrelation layer is placed so that its world coordinates
are lags in pixels of the source image; the peaks and the marker use the same coordinates.
"""

from __future__ import annotations

import numpy as np
from magicgui import widgets

from ..._qt.common import displayed_plane, is_greyscale_image, message_label
from ..._qt.dock import ToolDock
from ..._qt.history import DriftView, keep_in_history
from ..._qt.layers import calibration_of, with_calibration
from ..._qt.provenance import FieldSources, instrument_sources
from ..._qt.tables import SessionTable, TableExport
from ..._qt.tasks import Steps, start_worker
from ...history import magnification_setting
from ...io.images import find_magnification
from ..export import write_serialem_pixel
from ..find import MODES, PixelSizeResult, find_pixel_size
from ..table import PixelSizeTable
from .layers import (
    AUTOCORRELATION,
    marker_lag,
    place_marker,
    rescale_lattice_layers,
    showing_lattice,
)

SERIALEM_PIXEL = TableExport(
    "Save for SerialEM…",
    "the pixel sizes (nm, of the unbinned camera) as RotationAndPixel lines for a camera's "
    "block of SerialEMproperties.txt; type SerialEM's mag index into each row first",
    "rotation_and_pixel.txt",
    write_serialem_pixel,
)

__all__ = ["GratingWidget"]

OUTLIER_COLOUR = "#7a3a00"
#: A pixel size this far (%) from the file's own calibration is more likely a measurement
#: in the wrong mode (a lattice measured as the grating, or the reverse) than a
#: miscalibrated microscope: it is not offered for Apply.
WRONG_MODE_PERCENT = 50.0


def _measurable(layer) -> bool:
    return is_greyscale_image(layer) and not layer.name.endswith(AUTOCORRELATION)


class GratingWidget(ToolDock):
    """Pixel size and grid angle of an image of a calibration grating, and a session table."""

    def __init__(self, napari_viewer):
        super().__init__(napari_viewer)
        self.result: PixelSizeResult | None = None
        self._result_layer = None  # the image layer the result belongs to
        self._worker = None
        self.steps = Steps(self.native)  # a result shown one layer per event-loop turn

        self.layer = self.layer_picker(
            "Image", "the image layer of the grating or crystal lattice", _measurable
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
            label="Working size (px)",
            value=0,
            min=0,
            max=16384,
            step=128,
            tooltip="side the image is binned to before the autocorrelation, pixels; 0 = automatic",
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
        self.history = DriftView(napari_viewer, "pixel_size", self._setting)
        self.session = SessionTable(
            self,
            PixelSizeTable(),
            title="pixel sizes",
            csv_name="pixel_sizes.csv",
            editable=True,
            exports=(SERIALEM_PIXEL,),
        )
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
                self.session,
                self.history.widgets,
                self.status,
            ]
        )

        self.mode.changed.connect(self._mode_changed)
        self.magnification.changed.connect(lambda *_: self.history.refresh())
        self.layer.changed.connect(self._layer_changed)
        self.run_button.changed.connect(lambda: self.run())
        self.marker_button.changed.connect(lambda: self.run(use_marker=True))
        self.apply_button.changed.connect(lambda: self.apply_to_layer())
        self.add_button.changed.connect(lambda: self.add_to_table())
        self._layer_changed()
        self.refresh_table()

    # -- inputs ---------------------------------------------------------------------------
    @property
    def table(self) -> PixelSizeTable:
        return self.session.table

    def set_layer(self, layer) -> None:
        """Choose the image to measure (e.g. from the menu action)."""
        self.choose(self.layer, layer, _measurable, "a greyscale image layer")

    def _update_hint(self) -> None:
        if self.layer.value is None:
            text = "open an image of a calibration grating or crystal lattice"
        elif self.result is None or not self.result.found:
            text = "set the specimen and its spacing, then Find pixel size"
        else:
            text = "Apply to layer, or Add to table to compare magnifications"
        self.show_hint(text)

    def _layer_changed(self, event=None):
        """Another image: the previous image's result is no longer offered (its layers stay,
        named after it), and the magnification is this image's."""
        layer = self.layer.value
        self._generation = getattr(self, "_generation", 0) + 1
        self.result, self._result_layer = None, None
        self.result_label.value = "—"
        self.apply_button.enabled = self.add_button.enabled = False
        self.marker_button.enabled = False
        self._update_hint()
        if layer is None:
            with self.field_sources.quiet():
                self.magnification.value = 0.0
            self.field_sources.filled({})
            return
        # the image's own magnification, or none: never the previous image's
        metadata = with_calibration(layer)  # whichever reader opened it
        recorded = instrument_sources(metadata["emcal"])
        magnification = find_magnification(metadata)
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
        return marker_lag(self.viewer, self._result_layer or self.layer.value)

    def run(self, use_marker: bool = False) -> bool:
        """Measure the chosen layer in a worker; False when there is nothing to run."""
        layer = self.layer.value
        if layer is None:
            self.error("Choose an image layer first.")
            return False
        if self._worker is not None:
            self.status.value = "still measuring the previous image…"
            return False
        marker = self.marker if use_marker else None
        if use_marker and marker is None:
            self.error("Click a peak in the autocorrelation layer to place the marker first.")
            return False
        spacing = self.spacing.value or None
        if self.mode.value == "rectangular":
            spacing = (self.spacing.value, self.spacing2.value)
        recorded = calibration_of(layer)  # metadata, source file or scale, with its source
        kwargs = {
            "mode": self.mode.value,
            "marker": marker,
            "spacing_nm": spacing,
            "recorded_pixel_size_nm": recorded.pixel_size_nm,
            "mesh": self.mesh.value if self.mode.value == "mesh" else None,
            "binned_size": self.binned_size.value or None,
        }
        plane = displayed_plane(self.viewer, layer)
        generation = self._generation

        def show(result):
            if generation == self._generation:  # else the dock shows another image now
                self.steps.show(self._showing(layer, result, use_marker))

        def work():  # reading a lazy plane happens here, off the GUI thread
            return find_pixel_size(np.asarray(plane), **kwargs)

        self.run_button.enabled = self.marker_button.enabled = False
        self.status.value = f"measuring {layer.name}… (recorded pixel size from {recorded.source})"
        self._worker = start_worker(
            work,
            self.while_present(show, layer),
            lambda exc: self.error(str(exc)),
            self._finished,
        )
        return True

    def _finished(self):
        self.steps.after(self._ended)  # once the result is on screen

    def _ended(self):
        self._worker = None
        self.run_button.enabled = True
        self.marker_button.enabled = (
            self.layer.value is not None and self.find_output(AUTOCORRELATION) is not None
        )

    def _show(self, layer, result: PixelSizeResult, retry: bool = False) -> None:
        for _ in self._showing(layer, result, retry):
            pass

    def _showing(self, layer, result: PixelSizeResult, retry: bool = False):
        """:meth:`_show` as a generator, one layer per turn of the event loop."""
        if retry and not result.found and self.result is not None and self.result.found:
            # a failed retry from a marker keeps the good result it started from
            self.status.value = f"{result.message}; the previous result is kept"
            return
        self.result, self._result_layer = result, layer
        self._update_hint()
        first = self.find_output(AUTOCORRELATION) is None
        for _ in showing_lattice(self.viewer, layer, result, self._clicked):
            yield
        if first:
            self.viewer.reset_view()  # the image and its autocorrelation beside it in view
        self.viewer.layers.selection.active = layer  # the image stays the one worked on
        wrong_mode = likely_wrong_mode(result)
        self.apply_button.enabled = result.found and wrong_mode is None
        self.add_button.enabled = result.found
        if result.found:
            lines = result.summary_lines()
            if wrong_mode is not None:
                lines.append(f"⚠ {wrong_mode}")
            self.result_label.value = "\n".join(lines)
            self.status.value = wrong_mode or "; ".join(result.notes) or "done"
        else:
            self.result_label.value = "no lattice found"
            self.status.value = (
                f"{result.message}. Click a lattice peak in the "
                "autocorrelation and 'Try again from marker'."
            )

    @property
    def source_layer(self):
        """The image the result and its layers belong to."""
        return self._result_layer or self.layer.value

    def _clicked(self, lag) -> None:
        if self.source_layer is not None:
            self.set_marker(self.source_layer, lag)

    def set_marker(self, layer, lag) -> None:
        """Place the marker at a lag (dy, dx) in image pixels of ``layer``'s autocorrelation."""
        place_marker(self.viewer, layer, lag, self.result.binning if self.result else 1)
        self.marker_button.enabled = self._worker is None
        self.status.value = f"marker at lag ({lag[0]:.1f}, {lag[1]:.1f}) px"

    # -- results --------------------------------------------------------------------------
    def apply_to_layer(self) -> None:
        """Set the measured layer's pixel size (its last two axes) in nm."""
        if self.result is None or not self.result.found or self._result_layer is None:
            self.error("Find the pixel size first.")
            return
        wrong_mode = likely_wrong_mode(self.result)
        if wrong_mode is not None:
            self.error(wrong_mode)
            return
        layer = self._result_layer
        scale = list(layer.scale)
        scale[-2:] = [self.result.pixel_size_nm] * 2
        layer.scale = scale
        units = list(layer.units)
        units[-2:] = ["nm", "nm"]
        layer.units = units
        rescale_lattice_layers(self.viewer, layer)  # its lags in nm too: one unit per axis
        self.viewer.reset_view()
        self.status.value = f"{layer.name}: {self.result.pixel_size_nm:.5g} nm per pixel"

    def add_to_table(self) -> int | None:
        """Add the current result with the typed magnification; returns the row index."""
        if self.result is None or not self.result.found:
            self.error("Find the pixel size first.")
            return None
        magnification = self.magnification.value or None
        index = self.table.add(
            self.result,
            magnification=magnification,
            image=self._result_layer.name if self._result_layer else "",
            metadata=self._result_layer.metadata if self._result_layer else None,
        )
        self.refresh_table()
        result = self.result
        self.status.value = keep_in_history(
            "pixel_size",
            *result.history_values(),
            setting=self._setting() or "",
            source=self._result_layer.name if self._result_layer else "",
        )
        self.history.refresh()
        return index

    def _setting(self) -> str | None:
        """The history's setting of this image: its magnification (None: unknown)."""
        return magnification_setting(self.magnification.value) or None

    def refresh_table(self) -> None:
        """Redraw the table; outlier products and ambiguous rotations are highlighted."""
        frame = self.table.frame
        flagged = frame["product_outlier"] | frame["rotation_ambiguous"]
        self.session.view.show(frame, {row: OUTLIER_COLOUR for row in flagged[flagged].index})
        outliers = int(frame["product_outlier"].sum())
        if outliers:
            self.status.value = (
                f"{outliers} row(s) with pixel size x magnification off the "
                "median: check the magnification entered"
            )


def likely_wrong_mode(result: PixelSizeResult) -> str | None:
    """Why ``result`` is likely a measurement in the wrong specimen mode, or None: a pixel
    size more than :data:`WRONG_MODE_PERCENT` from the file's calibration."""
    difference = result.calibration_difference_percent if result.found else None
    if difference is None or abs(difference) <= WRONG_MODE_PERCENT:
        return None
    return (
        f"{result.pixel_size_nm:.5g} nm/px is {difference:+.0f} % from the file's "
        f"{result.recorded_pixel_size_nm:.5g} nm/px: likely the wrong specimen mode "
        f"(measured as '{result.mode}'; a lattice or the grating?) or the wrong spacing. "
        "Not offered for Apply: check the specimen and spacing, and measure again."
    )
