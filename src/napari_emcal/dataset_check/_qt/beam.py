"""The dataset check's beam section: find the bright-field disk, show and edit its centre
and radius, and send the centre to the overfocus calibration."""

from __future__ import annotations

import numpy as np
from magicgui import widgets

from ..analysis import BeamDisk, estimate_beam, find_beam

__all__ = ["BeamControls"]

APERTURE_SUM = " · aperture_sum"


class BeamControls(widgets.Container):
    """*Find beam centre*, beam centre y/x and disk radius (px), *Use as beam centre in
    Overfocus calibration*. Works on its dock (``host``): its layer, task and status."""

    def __init__(self, host):
        super().__init__(labels=True)
        self.margins = (0, 0, 0, 0)
        self.host = host
        self.find_button = widgets.PushButton(
            text="Find beam centre",
            tooltip="the bright-field disk from the aperture sum or 64 frames "
            "(Run check also finds it)",
        )
        self.cy = widgets.FloatSpinBox(
            label="Beam centre y (px)",
            tooltip="disk centre, detector pixels along y",
            value=0.0,
            min=-1e5,
            max=1e5,
            step=0.1,
        )
        self.cx = widgets.FloatSpinBox(
            label="Beam centre x (px)",
            tooltip="disk centre, detector pixels along x",
            value=0.0,
            min=-1e5,
            max=1e5,
            step=0.1,
        )
        self.radius = widgets.FloatSpinBox(
            label="Disk radius (px)",
            value=0.0,
            min=0.0,
            max=1e5,
            step=0.1,
            tooltip="radius of the bright-field disk, detector pixels; also the BF aperture "
            "(0 = not known yet)",
        )
        self.send_button = widgets.PushButton(
            text="Use as beam centre in Overfocus calibration",
            tooltip="send cy, cx (px) to the Overfocus calibration widget",
        )
        self.extend([self.find_button, self.cy, self.cx, self.radius, self.send_button])
        self.find_button.changed.connect(lambda: self.find())
        self.send_button.changed.connect(lambda: self.send_to_overfocus())

    @property
    def beam(self) -> BeamDisk | None:
        """The disk shown, or None while its radius is 0 (not known)."""
        if self.radius.value <= 0:
            return None
        return BeamDisk(self.cy.value, self.cx.value, self.radius.value)

    def find(self) -> bool:
        """The disk from the aperture sum layer when there is one, else from 64 frames."""
        host = self.host
        layer = host.layer.value
        if layer is None:
            host.error("Choose a 4D dataset layer first.")
            return False
        summed = host.find_output(APERTURE_SUM)
        source = np.asarray(summed.data) if summed is not None else None
        data = layer.data

        def work(report):
            beam = find_beam(source) if source is not None else estimate_beam(data)
            report(1.0)
            return beam

        return host.task.start("finding the beam centre", work, host.while_present(self.show))

    def forget(self) -> None:
        """No disk known (another dataset in front of the dock)."""
        self.cy.value = self.cx.value = self.radius.value = 0.0

    def show(self, beam: BeamDisk) -> None:
        self.cy.value, self.cx.value, self.radius.value = beam.cy, beam.cx, beam.radius
        self.host.status.value = (
            f"beam centre ({beam.cy:.2f}, {beam.cx:.2f}) px, disk radius {beam.radius:.2f} px"
        )

    def send_to_overfocus(self):
        """Put the beam centre into the Overfocus calibration widget (docked if needed)."""
        host = self.host
        if self.beam is None:
            host.error("Find the beam centre first.")
            return None
        _, overfocus = host.viewer.window.add_plugin_dock_widget(
            "napari-emcal", "Overfocus calibration"
        )
        if host.layer.value is not None:
            overfocus.set_layer(host.layer.value)
        overfocus.receive_beam_centre(
            self.cy.value, self.cx.value, "the bright-field disk found by the 4D dataset check"
        )
        host.status.value = "beam centre sent to Overfocus calibration"
        return overfocus
