"""The overfocus dock's calibration section: Estimate / Optimise in a worker with the
parameters following live, then Accept (kept on the layer and in the history) or Revert;
and what a calibration is for next: saved, copied for LiberTEM, sent to the dataset check.

The panel works on its dock (``host``): the chosen layer, the twin controls, the long
task runner, the status line. It adds no state a dock does not show.
"""

from __future__ import annotations

from pathlib import Path

from magicgui import widgets
from napari.utils.notifications import show_info

from ..._qt.common import message_label, open_path, save_path, span
from ..._qt.history import DriftView, keep_in_history
from ..._qt.layers import record_calibration
from ...errors import Cancelled, EmcalError, InvalidParameterError
from ...units import format_si
from ..calibrate import calibrate, estimate, history_values
from ..twin import TwinParams

__all__ = ["CalibrationPanel", "ParameterActions"]

CALIBRATED = ["scan_rotation", "flip_y", "overfocus"]
CENTRE = ["cy", "cx"]


class CalibrationPanel(widgets.Container):
    """Fit beam centre, Estimate, Optimise, Accept, Revert and the calibration's status."""

    def __init__(self, host):
        super().__init__(labels=True)
        self.margins = (0, 0, 0, 0)
        self.host = host
        self.last_calibration = None  # a CalibrationResult, or TwinParams from Estimate
        self._before: TwinParams | None = None  # what Revert goes back to
        self.fit_centre = widgets.CheckBox(
            label="Fit beam centre", value=True, tooltip="take cy, cx from the bright-field disk"
        )
        self.estimate_button = widgets.PushButton(
            text="Estimate", tooltip="rotation, flip and overfocus from parallax (seconds)"
        )
        self.optimise_button = widgets.PushButton(
            text="Optimise", tooltip="estimate, then refine to the sharpest shifted_sum"
        )
        self.accept_button = widgets.PushButton(
            text="Accept",
            tooltip="keep the calibrated parameters (also recorded on the layer for the "
            "dataset check, and in the calibration history)",
            enabled=False,
        )
        self.revert_button = widgets.PushButton(
            text="Revert",
            tooltip="go back to the parameters from before the calibration",
            enabled=False,
        )
        self.status = message_label("Calibration", "—")
        self.history = DriftView(host.viewer, "overfocus")
        self.extend(
            [
                self.fit_centre,
                self.estimate_button,
                self.optimise_button,
                self.accept_button,
                self.revert_button,
                self.status,
                self.history.widgets,
            ]
        )
        span(self.history.widgets)
        self.estimate_button.changed.connect(lambda: self.run(refine=False))
        self.optimise_button.changed.connect(lambda: self.run(refine=True))
        self.accept_button.changed.connect(lambda: self.accept())
        self.revert_button.changed.connect(lambda: self.revert())

    @property
    def pending(self) -> bool:
        """A calibration waits for Accept or Revert."""
        return self.accept_button.enabled

    def _free(self) -> list[str]:
        return CALIBRATED + (CENTRE if self.fit_centre.value else [])

    def _offer(self, offered: bool) -> None:
        self.accept_button.enabled = self.revert_button.enabled = offered
        self.host.update_hint()

    def run(self, refine: bool = True) -> None:
        """Estimate (and with ``refine``, optimise) the twin in a worker; live, cancellable."""
        host = self.host
        layer, start = host.layer.value, host.valid_params()
        if layer is None or start is None:
            return
        free, data = tuple(self._free()), layer.data

        def work(report):
            def progress(fraction, params):
                report(fraction)
                if params is not None:
                    host.live_params = params  # shown at the next poll

            if refine:
                return calibrate(data, start, free=free, progress=progress)
            return estimate(data, start, free=free, progress=progress)

        label = "optimising the twin" if refine else "estimating the twin"
        if host.task.start(label, work, self._calibrated, on_error=self._stopped):
            self._before = start
        else:
            host.status.value = "another task is running: cancel it first"

    def _calibrated(self, result) -> None:
        host = self.host
        host.live_params = None
        if host.layer.value is None:
            self._before = None
            self._offer(False)
            self.status.value = "the dataset layer was removed: nothing to accept"
            return
        params = result if isinstance(result, TwinParams) else result.params
        self.last_calibration = result
        host.set_params(params, source="computed by the automatic calibration", names=self._free())
        host.show_result()
        self._offer(True)
        self.status.value = describe(result)

    def _stopped(self, exc) -> None:
        """A calibration that failed or was cancelled changes nothing."""
        self.host.live_params = None
        self.revert()
        self.status.value = "cancelled" if isinstance(exc, Cancelled) else "failed: see the message"

    def accept(self) -> None:
        """Keep the calibrated parameters (also on the layer, for the dataset check, and in
        the calibration history)."""
        self._before = None
        self._offer(False)
        self.status.value = "accepted"
        layer, params, result = self.host.layer.value, self.host.params(), self.last_calibration
        if layer is None:
            return
        uncertainty = getattr(result, "uncertainty", None) or {}
        record_calibration(layer, params.scan_rotation, params.flip_y, uncertainty)
        if result is not None and not isinstance(result, TwinParams):
            values, sigma = history_values(result)
            kept = keep_in_history("overfocus", values, sigma, source=layer.name)
            self.status.value = f"accepted; {kept}"
            self.history.refresh()

    def revert(self) -> None:
        """Go back to the parameters from before the calibration."""
        if self._before is not None and self._before != self.host.params():
            self.host.set_params(self._before)
        self._before = None
        self._offer(False)
        self.status.value = "reverted to the parameters before the calibration"


def describe(result) -> str:
    """One line for a calibration: the values, and for an optimisation their standard
    errors and how certain the handedness is."""
    params = result if isinstance(result, TwinParams) else result.params
    summary = (
        f"rotation {params.scan_rotation:.3f}°, flip {params.flip_y}, "
        f"overfocus {format_si(params.overfocus, 'µm', 4)}"
    )
    if isinstance(result, TwinParams):
        return f"estimate: {summary}. Accept, Revert or Optimise."
    sigma = result.uncertainty
    errors = []
    if "scan_rotation" in sigma:
        errors.append(f"scan_rotation ± {sigma['scan_rotation']:.3f}°")
    if "overfocus" in sigma:
        errors.append(f"overfocus ± {format_si(sigma['overfocus'], 'µm', 4)}")
    margin = (
        f"; handedness {result.flip_margin:.0f} σ from the other"
        if result.flip_margin is not None
        else ""
    )
    return (
        f"optimised ({result.n_evaluations} evaluations, correlation {result.score:.3f}): "
        f"{summary}; {', '.join(errors)}{margin}. Accept or Revert."
    )


class ParameterActions(widgets.Container):
    """Save and load the twin's parameters, copy them for LiberTEM, send the rotation and
    flip to the 4D dataset check."""

    def __init__(self, host):
        super().__init__(labels=False)
        self.margins = (0, 0, 0, 0)
        self.host = host
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
                self.send_check_button,
                self.report_button,
            ]
        )
        self.save_button.changed.connect(self._save_dialog)
        self.load_button.changed.connect(self._load_dialog)
        self.libertem_button.changed.connect(lambda: self.copy_for_libertem())
        self.send_check_button.changed.connect(lambda: self.send_to_check())
        self.report_button.changed.connect(self._report_dialog)

    def save(self, path) -> None:
        self.host.params().save(path)
        self.host.status.value = f"saved {Path(path).name}"

    def load(self, path) -> None:
        try:
            params = TwinParams.load(path)
        except (EmcalError, OSError) as exc:
            self.host.error(f"Could not load {Path(path).name}: {exc}")
            return
        self.host.set_params(params, source=f"loaded from {Path(path).name}")

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
        return self.host.params().libertem_com_text()

    def copy_for_libertem(self) -> str:
        """Put LiberTEM centre-of-mass arguments on the clipboard (and return them)."""
        from qtpy.QtWidgets import QApplication

        text = self.libertem_text()
        QApplication.clipboard().setText(text)
        self.host.status.value = f"copied: {text}"
        show_info(f"Copied for LiberTEM CoM: {text}")
        return text

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
        settings = check.settings
        settings.scan_rotation.value, settings.flip_y.value = params.scan_rotation, params.flip_y
        host.status.value = "scan rotation and flip sent to the 4D dataset check"
        return check

    def write_report(self, path):
        """The last optimised calibration, its images and the history, as an HTML page."""
        from ...history import History
        from ...report import history_section, overfocus_section, write_report
        from ...report_cli import compare_with_history
        from ..calibrate import CalibrationResult, history_values

        host = self.host
        result = host.calibration.last_calibration
        if not isinstance(result, CalibrationResult) or host.layer.value is None:
            raise InvalidParameterError("Optimise first: the report is of a calibration")
        name = host.layer.value.name
        sources = host.twin.field_sources.sources
        section = overfocus_section(result, host.last_images, name, dict(sources))
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
