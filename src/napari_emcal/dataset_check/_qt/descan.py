"""The dataset check's descan section: send the fitted descan to the overfocus
calibration, take the twin's back for comparison, and save it for LiberTEM and py4DSTEM."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from magicgui import widgets

from ..._qt.common import save_path
from ...errors import EmcalError, InvalidParameterError
from ..export import compare_descan, write_descan_exports

__all__ = ["DescanActions"]


class DescanActions(widgets.Container):
    """*Use descan in Overfocus calibration*, *Save descan for LiberTEM…*, *Save descan
    for py4DSTEM…*; and the overfocus twin's descan received for comparison. Works on its
    dock (``host``): its report, layer, settings and status."""

    def __init__(self, host):
        super().__init__(labels=False)
        self.margins = (0, 0, 0, 0)
        self.host = host
        #: the descan the overfocus dock sent: (matrix, standard errors or None, source)
        self.received = None
        self.send_button = widgets.PushButton(
            text="Use descan in Overfocus calibration",
            tooltip="send the fitted descan (px per scan px) and the beam centre at the scan "
            "centre (px) to the Overfocus calibration's twin",
        )
        self.libertem_button = widgets.PushButton(
            text="Save descan for LiberTEM…",
            tooltip="CoMUDF arguments cy, cx, r, scan_rotation, flip_y and the descan as its "
            "regression (3x2), as JSON",
        )
        self.py4dstem_button = widgets.PushButton(
            text="Save descan for py4DSTEM…",
            tooltip="origin maps qx0, qy0 per scan position (.npz, or JSON) for "
            "datacube.calibration.set_origin",
        )
        saves = widgets.Container(
            layout="horizontal", widgets=[self.libertem_button, self.py4dstem_button]
        )
        saves.margins = (0, 0, 0, 0)
        self.extend([self.send_button, saves])
        self.send_button.changed.connect(lambda: self.send_to_overfocus())
        self.libertem_button.changed.connect(lambda: self._save_dialog("libertem"))
        self.py4dstem_button.changed.connect(lambda: self._save_dialog("py4dstem"))

    def _fit(self):
        report = self.host.report
        if report is None or report.descan is None:
            raise InvalidParameterError("Run the check first: no descan has been fitted")
        return report

    def send_to_overfocus(self):
        """Put the descan and the beam centre at the scan centre into the Overfocus
        calibration's twin (docked if needed)."""
        host = self.host
        try:
            descan = self._fit().descan
        except EmcalError as exc:
            host.error(str(exc))
            return None
        _, overfocus = host.viewer.window.add_plugin_dock_widget(
            "napari-emcal", "Overfocus calibration"
        )
        if host.layer.value is not None:
            overfocus.set_layer(host.layer.value)
        overfocus.receive_descan(
            descan.matrix,
            descan.centre,
            "the descan fitted by the 4D dataset check",
        )
        host.status.value = "descan and beam centre sent to Overfocus calibration"
        return overfocus

    def receive(self, matrix, sigma, source: str) -> None:
        """Take the descan (2x2 px per scan px, with standard errors or None) that the
        overfocus twin holds, to compare with the check's fit."""
        self.received = (np.asarray(matrix, float), sigma, source)
        self.host.status.value = f"descan {source}"

    def comparison(self) -> str | None:
        """The check's fit against the received descan, or None."""
        report = self.host.report
        if self.received is None or report is None or report.descan is None:
            return None
        matrix, sigma, source = self.received
        return f"vs the descan {source}: {compare_descan(report.descan, matrix, sigma)}"

    def save(self, kind: str, path) -> Path:
        """Write the descan for ``"libertem"`` or ``"py4dstem"``; returns the path."""
        report = self._fit()
        settings = self.host.settings
        turn = (settings.scan_rotation.value, settings.flip_y.value)
        (line,) = write_descan_exports(report, rotation=turn, **{kind: path})
        self.host.status.value = line
        return Path(path)

    def _save_dialog(self, kind: str) -> None:
        name, default, filters = {
            "libertem": ("LiberTEM", "libertem_com_descan.json", "JSON (*.json)"),
            "py4dstem": ("py4DSTEM", "py4dstem_origin.npz", "NumPy (*.npz);;JSON (*.json)"),
        }[kind]
        path = save_path(None, f"Save descan for {name}", default, filters)
        if path:
            try:
                self.save(kind, path)
            except (EmcalError, OSError) as exc:
                self.host.error(str(exc))
