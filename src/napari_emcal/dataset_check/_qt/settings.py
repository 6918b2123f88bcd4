"""The dataset check's settings: ADF annulus, scan rotation and flip of the CoM field,
saturation count, descan tolerance, and the camera length and detector pixel size that
turn detector pixels into scattering angles."""

from __future__ import annotations

import numpy as np
from magicgui import widgets

from ..._qt.provenance import FieldSources, instrument_sources
from ..._qt.quantity import QuantitySpinBox

__all__ = ["CheckSettings"]


class CheckSettings(widgets.Container):
    """What the check measures with; read when a check starts. :meth:`fill_from` sets
    what belongs to a dataset (camera length, detector pixel size, scan rotation and flip,
    saturation count) from the file, or back to unknown; the ADF annulus (in disk radii)
    and the descan tolerance are the user's and stay."""

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
        self.camera_length = QuantitySpinBox(
            label="Camera length",
            unit="mm",
            value=0.0,
            min=0.0,
            max=1e6,
            step=10.0,
            tooltip="specimen to detector, for the scattering angles; from the file when it "
            "records it; 0 = unknown (angles not reported)",
        )
        self.detector_pixel = QuantitySpinBox(
            label="Detector pixel",
            unit="µm",
            value=0.0,
            min=0.0,
            max=1e5,
            step=1.0,
            tooltip="physical size of one detector pixel (e.g. 55 for a Medipix3), for the "
            "scattering angles; 0 = unknown (angles not reported)",
        )
        self.field_sources = FieldSources(
            {"camera_length": self.camera_length, "detector_pixel_size": self.detector_pixel}
        )
        self.extend(
            [
                self.camera_length,
                self.detector_pixel,
                self.adf_inner,
                self.adf_outer,
                self.scan_rotation,
                self.flip_y,
                self.max_count,
                self.tolerance,
            ]
        )

    def fill_from(self, metadata: dict, recorded: dict | None = None) -> None:
        """The values a dataset's metadata (a layer's ``metadata['emcal']``) records, and the
        scan rotation and flip of an overfocus calibration accepted on it (``recorded``);
        what they do not hold goes back to unknown (0) or the default, never the
        previous dataset's value."""
        camera = metadata.get("camera_length")
        pixel = metadata.get("detector_pixel_size")
        pixel = float(np.mean(pixel)) if pixel else None
        with self.field_sources.quiet():
            self.camera_length.si = camera or 0.0
            self.detector_pixel.si = pixel or 0.0
        sources = instrument_sources(metadata)
        self.field_sources.filled(
            {
                "camera_length": sources.get("camera_length") if camera else None,
                "detector_pixel_size": sources.get("detector_pixel_size") if pixel else None,
            }
        )
        self.scan_rotation.value = recorded["scan_rotation"] if recorded else 0.0
        self.flip_y.value = bool(recorded["flip_y"]) if recorded else False
        self.max_count.value = 0.0

    @property
    def angle_inputs(self) -> tuple[float | None, float | None]:
        """Camera length and detector pixel size (m), None where unknown."""
        return (self.camera_length.si or None, self.detector_pixel.si or None)
