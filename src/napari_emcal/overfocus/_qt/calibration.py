"""The overfocus dock's calibration section: Estimate / Optimise in a worker with the
parameters following live, then Accept (kept on the layer and in the history) or Revert,
and the history of earlier calibrations.

The panel works on its dock (``host``): the chosen layer, the twin controls, the long
task runner, the status line. It adds no state a dock does not show.
"""

from __future__ import annotations

from magicgui import widgets

from ..._qt.common import message_label, span
from ..._qt.history import DriftView, keep_in_history
from ..._qt.layers import record_calibration
from ...errors import Cancelled
from ...units import format_si
from ..calibrate import calibrate, estimate, history_values
from ..twin import TwinParams

__all__ = ["CalibrationPanel", "describe"]

CALIBRATED = ["scan_rotation", "flip_y", "overfocus"]
CENTRE = ["cy", "cx"]


class CalibrationPanel(widgets.Container):
    """Fit beam centre, Estimate, Optimise, Accept, Revert and the calibration's status."""

    def __init__(self, host):
        super().__init__(labels=True)
        self.margins = (0, 0, 0, 0)
        self.host = host
        self.last_calibration = None  # a CalibrationResult, or TwinParams from Estimate
        self.calibrated_params = None  # the controls' twin right after the calibration
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
        # the twin as the controls hold it (rounded to their decimals): while it is
        # unchanged, what is saved is this calibration, with its standard errors
        self.calibrated_params = host.params()
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
