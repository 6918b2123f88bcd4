"""The digital twin's parameters as controls: values in the units a microscopist types,
held as a :class:`TwinParams` in SI, each control saying where its value came from."""

from __future__ import annotations

import math
from contextlib import contextmanager

from magicgui import widgets
from psygnal import Signal
from qtpy.QtWidgets import QAbstractSpinBox

from ..._qt.provenance import FieldSources, instrument_sources
from ..._qt.quantity import QuantitySpinBox
from ...geometry import wrap_angle
from ..twin import TwinParams

__all__ = ["TwinControls"]

#: Twin parameter -> the instrument value a reader records for it (io.instrument).
INSTRUMENT_NAMES = {
    "scan_pixel_size": "scan_step",
    "detector_pixel_size": "detector_pixel_size",
    "camera_length": "camera_length",
}


class DescanControls(widgets.Container):
    """The descan matrix as a 2x2 block of boxes (detector px per scan px): the beam
    centre's walk ``∂cy/∂sy, ∂cy/∂sx, ∂cx/∂sy, ∂cx/∂sx``, with the fitted value's standard
    errors in the tooltip."""

    NAMES = (("cy", "sy"), ("cy", "sx"), ("cx", "sy"), ("cx", "sx"))

    def __init__(self):
        super().__init__(layout="vertical", labels=False, label="Descan (px/px)")
        self.margins = (0, 0, 0, 0)
        self.boxes = [
            widgets.FloatSpinBox(
                value=0.0,
                min=-1.0,
                max=1.0,
                step=0.001,
                tooltip=f"∂{c}/∂{s}: detector px the beam centre moves per scan px along {s}",
            )
            for c, s in self.NAMES
        ]
        # the matrix as it is written: row cy above row cx
        rows = [
            widgets.Container(layout="horizontal", labels=False, widgets=self.boxes[i : i + 2])
            for i in (0, 2)
        ]
        for row in rows:
            row.margins = (0, 0, 0, 0)
            row.native.layout().setSpacing(2)
        self.extend(rows)
        self.native.layout().setSpacing(2)
        for box in self.boxes:
            # compact: no arrows, just the digits (napari's style gives a spin box 90 px)
            box.native.setDecimals(4)
            box.native.setButtonSymbols(QAbstractSpinBox.ButtonSymbols.NoButtons)
            box.native.setStyleSheet("QAbstractSpinBox { min-width: 52px; padding: 1px 3px; }")
        self.tooltip = (
            "descan: the beam centre at scan position s is (cy, cx) + D (s − s_c), s_c the "
            "scan's centre; rows (cy, cx), columns (sy, sx), detector px per scan px. 0 = "
            "the beam stays put"
        )

    @property
    def value(self):
        return (
            (self.boxes[0].value, self.boxes[1].value),
            (self.boxes[2].value, self.boxes[3].value),
        )

    @value.setter
    def value(self, matrix) -> None:
        flat = [float(v) for row in matrix for v in row]
        for box, v in zip(self.boxes, flat):
            box.value = v

    def show_sigma(self, sigma) -> None:
        """Show the standard errors (2x2, px/px) of a fitted descan on its boxes; None
        clears them."""
        flat = [None] * 4 if sigma is None else [float(v) for row in sigma for v in row]
        for box, (c, s), error in zip(self.boxes, self.NAMES, flat):
            tip = f"∂{c}/∂{s}: detector px the beam centre moves per scan px along {s}"
            box.tooltip = tip if error is None else f"{tip}; fitted ± {error:.4f} px/px"


class TwinControls(widgets.Container):
    """Overfocus, camera length, scan step, detector pixel, scan rotation (box and slider),
    flip, beam centre, descan and semi-convergence angle.

    :attr:`edited` fires when the user changes a parameter, never while the program
    shows values (:meth:`show`, :meth:`prefill`).
    """

    edited = Signal()

    def __init__(self):
        super().__init__(labels=True)
        self.margins = (0, 0, 0, 0)
        self._quiet = False
        self.overfocus = QuantitySpinBox(
            label="Overfocus",
            unit="µm",
            value=1.0,
            min=-1e5,
            max=1e5,
            step=0.01,
            tooltip="probe focus above the specimen; negative = underfocus",
        )
        self.camera_length = QuantitySpinBox(
            label="Camera length",
            unit="mm",
            value=150.0,
            min=-1e6,
            max=1e6,
            step=1.0,
            tooltip="specimen to detector",
        )
        self.scan_step = QuantitySpinBox(
            label="Scan step",
            unit="nm",
            value=1.0,
            min=-1e6,
            max=1e6,
            step=0.01,
            tooltip="distance between scan positions at the specimen",
        )
        self.detector_pixel = QuantitySpinBox(
            label="Detector pixel",
            unit="µm",
            value=55.0,
            min=-1e6,
            max=1e6,
            step=0.1,
            tooltip="physical size of one detector pixel",
        )
        self.scan_rotation = widgets.FloatSpinBox(
            label="Scan rotation (°)",
            value=0.0,
            min=-180.0,
            max=180.0,
            step=0.01,
            tooltip="rotation of the scan against the detector, degrees (R(θ)·F, as "
            "LiberTEM's scan_rotation)",
        )
        self.scan_rotation.native.setDecimals(4)  # a calibration's 0.001° is kept
        self.rotation_slider = widgets.FloatSlider(
            label="",
            value=0.0,
            min=-180.0,
            max=180.0,
            step=0.01,
            readout=False,
            tooltip="scan rotation, degrees: drag to turn; the box above holds 0.0001°",
        )
        self.flip_y = widgets.CheckBox(
            label="Flip Y",
            value=False,
            tooltip="mirror the scan's y axis before rotating (LiberTEM's flip_y)",
        )
        self.cy = widgets.FloatSpinBox(
            label="Beam centre y (px)",
            value=0.0,
            min=-1e5,
            max=1e5,
            step=0.1,
            tooltip="row of the optical axis on the detector, pixels",
        )
        self.cx = widgets.FloatSpinBox(
            label="Beam centre x (px)",
            value=0.0,
            min=-1e5,
            max=1e5,
            step=0.1,
            tooltip="column of the optical axis on the detector, pixels",
        )
        self.semiconv = QuantitySpinBox(
            label="Semi-conv.",
            unit="mrad",
            value=0.0,
            min=0.0,
            max=1e4,
            step=0.1,
            tooltip="convergence semi-angle, limits the shadow image to the bright-field "
            "disk; 0 = use every pixel",
        )
        self.descan = DescanControls()
        #: the controls that hold a parameter with a unit, by the parameter's name
        self.quantities = {
            "overfocus": self.overfocus,
            "scan_pixel_size": self.scan_step,
            "camera_length": self.camera_length,
            "detector_pixel_size": self.detector_pixel,
            "semiconv": self.semiconv,
        }
        #: where each value came from, shown on its control
        self.field_sources = FieldSources(
            {
                **self.quantities,
                "cy": self.cy,
                "cx": self.cx,
                "scan_rotation": self.scan_rotation,
                "flip_y": self.flip_y,
                "descan": self.descan,
            }
        )
        self.extend(
            [
                self.overfocus,
                self.camera_length,
                self.scan_step,
                self.detector_pixel,
                self.scan_rotation,
                self.rotation_slider,
                self.flip_y,
                self.cy,
                self.cx,
                self.descan,
                self.semiconv,
            ]
        )
        for w in (*self.quantities.values(), self.flip_y, self.cy, self.cx, self.descan):
            w.changed.connect(self._changed)
        self.scan_rotation.changed.connect(self._rotation_from_box)
        self.rotation_slider.changed.connect(self._rotation_from_slider)
        self._defaults = self.params()  # what a file that records nothing starts from

    # -- values ------------------------------------------------------------------------
    def params(self) -> TwinParams:
        """The parameters shown (SI units); :class:`EmcalError` when they are invalid."""
        values = {name: field.si for name, field in self.quantities.items()}
        values["semiconv"] = values["semiconv"] or None  # 0 = every pixel
        return TwinParams(
            **values,
            cy=self.cy.value,
            cx=self.cx.value,
            scan_rotation=self.scan_rotation.value,
            flip_y=self.flip_y.value,
            descan=self.descan.value,
        )

    def show(self, params: TwinParams, *, source: str | None = None, names=None) -> None:
        """Show ``params``; ``source`` says where the values of ``names`` (default: all)
        came from. Fires no :attr:`edited`."""
        with self.programmatic():
            for name, field in self.quantities.items():
                field.si = getattr(params, name) or 0.0  # semiconv None shows as 0
            self.cy.value, self.cx.value = params.cy, params.cx
            self.scan_rotation.value = wrap_angle(params.scan_rotation)
            self.flip_y.value = params.flip_y
            self.descan.value = params.descan
        if source is not None:
            for name in names or self.field_sources.fields:
                self.field_sources.set(name, source)

    def prefill(self, metadata: dict, detector_shape) -> None:
        """Fill from what a file says (a layer's ``metadata['emcal']``): its values and
        where each came from; the beam centre defaults to the detector's middle. A value
        the file does not record takes its default, never the previous dataset's."""
        known = TwinParams.known_from_metadata(metadata)
        self.show(self._defaults)
        with self.programmatic():
            self.cy.value = known.get("cy", (detector_shape[0] - 1) / 2)
            self.cx.value = known.get("cx", (detector_shape[1] - 1) / 2)
            for name, value in known.items():
                if name in self.quantities:
                    self.quantities[name].si = value
                elif name == "scan_rotation":
                    self.scan_rotation.value = wrap_angle(value)
                elif name == "flip_y":
                    self.flip_y.value = bool(value)
                elif name == "descan":
                    self.descan.value = value
        if metadata.get("nominal"):
            sources = dict.fromkeys(known, "the sample's nominal twin (to be calibrated)")
        else:
            recorded = instrument_sources(metadata)
            sources = {
                twin: recorded.get(name) for twin, name in INSTRUMENT_NAMES.items() if twin in known
            }
        self.field_sources.filled(sources)

    @contextmanager
    def programmatic(self):
        """Changes made inside are the program's: no :attr:`edited`, not "typed"."""
        quiet, self._quiet = self._quiet, True
        try:
            with self.field_sources.quiet():
                yield
        finally:
            self._quiet = quiet

    # -- signals -----------------------------------------------------------------------
    def _changed(self, *_):
        if not self._quiet:
            self.edited.emit()

    def _rotation_from_box(self, value):
        if not math.isclose(self.rotation_slider.value, value, abs_tol=1e-9):
            with self.rotation_slider.changed.blocked():
                self.rotation_slider.value = value
        self._changed()

    def _rotation_from_slider(self, value):
        if not math.isclose(self.scan_rotation.value, value, abs_tol=1e-9):
            self.scan_rotation.value = value  # the box follows, and fires edited
