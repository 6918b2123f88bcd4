"""What an overfocus calibration is for next: saved and loaded as JSON, copied for
LiberTEM, sent to the dataset check, written as a report.

The section reads the calibration and the last images from the dock's
:class:`~napari_emcal.overfocus.session.OverfocusSession`, and from its dock (``host``)
only the twin the controls show, the dataset layer and the status line."""

from __future__ import annotations

from pathlib import Path

from magicgui import widgets
from napari.utils.notifications import show_info

from ..._qt.common import open_path, save_path
from ...errors import EmcalError, InvalidParameterError
from ..twin import TwinParams

__all__ = ["ParameterActions"]


class ParameterActions(widgets.Container):
    """Save and load the twin's parameters, copy them for LiberTEM, send the rotation and
    flip to the 4D dataset check."""

    def __init__(self, host, session):
        super().__init__(labels=False)
        self.margins = (0, 0, 0, 0)
        self.host = host
        self.session = session
        self.save_button = widgets.PushButton(
            text="Save parameters…",
            tooltip="write the twin parameters, with units and uncertainties, to JSON",
        )
        self.load_button = widgets.PushButton(
            text="Load parameters…",
            tooltip="read twin parameters from a JSON file (any known units)",
        )
        self.libertem_button = widgets.PushButton(
            text="Copy for LiberTEM",
            tooltip="copy scan_rotation (°), flip_y, cy, cx (px) as LiberTEM's CoM arguments",
        )
        self.libertem_save_button = widgets.PushButton(
            text="Save for LiberTEM…",
            tooltip="write scan_rotation (°), flip_y, cy, cx (px) as a JSON file of LiberTEM's "
            "centre-of-mass arguments, with their convention",
        )
        self.py4dstem_button = widgets.PushButton(
            text="Save for py4DSTEM…",
            tooltip="write QR_rotation_degrees, QR_flip, the origin (px) and the pixel sizes "
            "(Å, mrad) as py4DSTEM calibration values, with their convention and standard "
            "errors",
        )
        self.send_check_button = widgets.PushButton(
            text="Use rotation and flip in 4D dataset check",
            tooltip="send scan_rotation (°) and flip_y to the 4D dataset check (docked if "
            "needed), whose report compares them with the CoM rotation",
        )
        self.report_button = widgets.PushButton(
            text="Write report…",
            tooltip="an HTML page with the calibration (values, standard errors, where each "
            "input came from), its images and the comparison with the history",
        )
        self.extend(
            [
                self.save_button,
                self.load_button,
                self.libertem_button,
                self.libertem_save_button,
                self.py4dstem_button,
                self.send_check_button,
                self.report_button,
            ]
        )
        self.save_button.changed.connect(self._save_dialog)
        self.load_button.changed.connect(self._load_dialog)
        self.libertem_button.changed.connect(lambda: self.copy_for_libertem())
        self.libertem_save_button.changed.connect(self._libertem_dialog)
        self.py4dstem_button.changed.connect(self._py4dstem_dialog)
        self.send_check_button.changed.connect(lambda: self.send_to_check())
        self.report_button.changed.connect(self._report_dialog)

    def uncertainty(self) -> dict:
        """The standard errors of the last optimisation while the twin still holds its
        result (none once a parameter has been changed by hand)."""
        return self.session.uncertainty(self.host.params())

    def save(self, path) -> None:
        sigma = self.uncertainty()
        self.host.params().save(path, uncertainty=sigma)
        self.host.status.value = f"saved {Path(path).name}" + (
            " with standard errors" if sigma else ""
        )

    def save_for_py4dstem(self, path) -> Path:
        """py4DSTEM's calibration values of the twin as JSON (``emcal export py4dstem``)."""
        from ..export import write_py4dstem_calibration

        written = write_py4dstem_calibration(self.host.params(), path, self.uncertainty())
        self.host.status.value = f"py4DSTEM calibration values written to {written}"
        return written

    def _py4dstem_dialog(self, event=None):
        path = save_path(None, "Save for py4DSTEM", "py4dstem_calibration.json", "JSON (*.json)")
        if path:
            try:
                self.save_for_py4dstem(path)
            except (EmcalError, OSError) as exc:
                self.host.error(str(exc))

    def load(self, path) -> None:
        try:
            params = TwinParams.load(path)
        except (EmcalError, OSError) as exc:
            self.host.error(f"Could not load {Path(path).name}: {exc}")
            return
        self.session.use(params, f"loaded from {Path(path).name}")

    def _save_dialog(self, event=None):
        path = save_path(None, "Save twin parameters", "twin.json", "JSON (*.json)")
        if path:
            try:
                self.save(path)
            except (EmcalError, OSError) as exc:
                self.host.error(str(exc))

    def _load_dialog(self, event=None):
        path = open_path(None, "Load twin parameters", "JSON (*.json)")
        if path:
            self.load(path)

    def libertem_text(self) -> str:
        from ..export import libertem_com_text

        return libertem_com_text(self.host.params())

    def copy_for_libertem(self) -> str:
        """Put LiberTEM centre-of-mass arguments on the clipboard (and return them)."""
        from qtpy.QtWidgets import QApplication

        text = self.libertem_text()
        QApplication.clipboard().setText(text)
        self.host.status.value = f"copied: {text}"
        show_info(f"Copied for LiberTEM CoM: {text}")
        return text

    def save_for_libertem(self, path) -> Path:
        """LiberTEM's centre-of-mass arguments of the twin as JSON (``emcal export libertem``)."""
        from ..export import write_libertem_com

        written = write_libertem_com(self.host.params(), path)
        self.host.status.value = f"LiberTEM CoM arguments written to {written}"
        return written

    def _libertem_dialog(self, event=None):
        path = save_path(None, "Save for LiberTEM", "libertem_com.json", "JSON (*.json)")
        if path:
            try:
                self.save_for_libertem(path)
            except (EmcalError, OSError) as exc:
                self.host.error(str(exc))

    def send_to_check(self):
        """Put the scan rotation and flip into the 4D dataset check (docked if needed)."""
        host = self.host
        layer = host.layer.value
        if layer is None:
            host.error("Choose a 4D dataset layer first.")
            return None
        params = host.params()
        _, check = host.viewer.window.add_plugin_dock_widget("napari-emcal", "4D dataset check")
        check.set_layer(layer)
        check.receive_rotation(
            params.scan_rotation, params.flip_y, "sent from the Overfocus calibration"
        )
        if params.has_descan:  # the check compares its own fit with it
            sigma = self.uncertainty().get("descan")
            check.receive_descan(params.descan_matrix, sigma, "of the Overfocus calibration")
            host.status.value = "scan rotation, flip and descan sent to the 4D dataset check"
            return check
        host.status.value = "scan rotation and flip sent to the 4D dataset check"
        return check

    def write_report(self, path):
        """The last optimised calibration, its images and the history, as an HTML page."""
        from ...history import History, compare_with_history
        from ...report import history_section, overfocus_section, write_report
        from ..calibrate import CalibrationResult, history_values

        host = self.host
        result = self.session.last_calibration
        if not isinstance(result, CalibrationResult) or host.layer.value is None:
            raise InvalidParameterError("Optimise first: the report is of a calibration")
        name = host.layer.value.name
        sources = host.twin.field_sources.sources
        section = overfocus_section(result, self.session.last_images, name, dict(sources))
        compared = [compare_with_history("overfocus", *history_values(result))]
        history = history_section(History().entries("overfocus"), compared)
        written = write_report(path, [section, history], title=f"Overfocus calibration: {name}")
        host.status.value = f"report written to {written}"
        return written

    def _report_dialog(self, event=None):
        path = save_path(None, "Write the calibration report", "report.html", "HTML (*.html)")
        if path:
            try:
                self.write_report(path)
            except (EmcalError, OSError) as exc:
                self.host.error(str(exc))
