"""The dataset check's settings: ADF annulus, scan rotation and flip of the CoM field,
saturation count and descan tolerance."""

from __future__ import annotations

from magicgui import widgets

__all__ = ["CheckSettings"]


class CheckSettings(widgets.Container):
    """What the check measures with; read when a check starts."""

    def __init__(self):
        super().__init__(labels=True)
        self.margins = (0, 0, 0, 0)
        self.adf_inner = widgets.FloatSpinBox(
            label="ADF inner (disk radii)",
            tooltip="inner radius of the ADF annulus, in bright-field disk radii",
            value=1.2,
            min=0.0,
            max=100.0,
            step=0.1,
        )
        self.adf_outer = widgets.FloatSpinBox(
            label="ADF outer (disk radii)",
            value=0.0,
            min=0.0,
            max=1000.0,
            step=0.5,
            tooltip="outer radius of the ADF annulus, in disk radii; 0 = to the detector corners",
        )
        self.scan_rotation = widgets.FloatSpinBox(
            label="Scan rotation (°)",
            tooltip="scan rotation used to turn the CoM field (degrees); from an accepted "
            "overfocus calibration when there is one",
            value=0.0,
            min=-360.0,
            max=360.0,
            step=0.1,
        )
        self.scan_rotation.native.setDecimals(4)  # a calibration's 0.001° is kept
        self.flip_y = widgets.CheckBox(
            text="Flip y",
            tooltip="flip of the detector y axis (handedness), as LiberTEM's flip_y",
            value=False,
        )
        self.max_count = widgets.FloatSpinBox(
            label="Saturation count",
            value=0.0,
            min=0.0,
            max=1e12,
            step=1.0,
            tooltip="counts at which a detector pixel saturates; 0 = from the file, else "
            "the dtype maximum",
        )
        self.tolerance = widgets.FloatSpinBox(
            label="Descan tolerance (px)",
            tooltip="largest acceptable movement of the disk across the scan, detector pixels",
            value=2.0,
            min=0.0,
            max=1e4,
            step=0.5,
        )
        self.extend(
            [
                self.adf_inner,
                self.adf_outer,
                self.scan_rotation,
                self.flip_y,
                self.max_count,
                self.tolerance,
            ]
        )
