"""The overfocus dock's calibration section: Estimate / Optimise in a worker with the
parameters following live, then Accept (kept on the layer and in the history) or Revert,
and the history of earlier calibrations.

The panel calls the dock's :class:`~napari_emcal.overfocus.session.OverfocusSession` and
observes it; from its dock (``host``) it takes only the dataset layer, the twin the
controls show, the long task runner and the status line.
"""

from __future__ import annotations

import numpy as np
from magicgui import widgets

from ..._qt.common import message_label, span
from ..._qt.history import DriftView, keep_in_history
from ..._qt.layers import record_calibration
from ...errors import Cancelled
from ...units import format_si
from ..calibrate import calibrate, estimate, history_values
from ..session import OverfocusSession
from ..twin import TwinParams
from .kernels import wait_for_kernels

__all__ = ["CalibrationPanel", "describe"]

CALIBRATED = ["scan_rotation", "flip_y", "overfocus"]
CENTRE = ["cy", "cx"]
DESCAN = ["descan"]


class CalibrationPanel(widgets.Container):
    """Fit beam centre, Estimate, Optimise, Accept, Revert and the calibration's status."""

    def __init__(self, host, session: OverfocusSession):
        super().__init__(labels=True)
        self.margins = (0, 0, 0, 0)
        self.host = host
        self.session = session
        self.fit_centre = widgets.CheckBox(
            label="Fit beam centre", value=True, tooltip="take cy, cx from the bright-field disk"
        )
        self.fit_descan = widgets.CheckBox(
            label="Fit descan",
            value=False,
            tooltip="measure the beam's walk on the detector across the scan (the disk's "
            "centre in every frame) and calibrate on frames with it undone",
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
                self.fit_descan,
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
        session.calibration_changed.connect(self._follow)
        session.retargeted.connect(self._forget)

    @property
    def pending(self) -> bool:
        """A calibration waits for Accept or Revert."""
        return self.session.pending is not None

    @property
    def last_calibration(self):
        """The last calibration on this dataset (pending or accepted), or None."""
        return self.session.last_calibration

    def _free(self) -> list[str]:
        return (
            CALIBRATED
            + (CENTRE if self.fit_centre.value else [])
            + (DESCAN if self.fit_descan.value else [])
        )

    def _follow(self) -> None:
        self.accept_button.enabled = self.revert_button.enabled = self.pending

    def _forget(self) -> None:
        self.status.value = "—"

    def run(self, refine: bool = True) -> bool:
        """Estimate (and with ``refine``, optimise) the twin in a worker; live, cancellable.
        False (with a message) when it cannot start."""
        host, session = self.host, self.session
        layer = host.layer.value
        if layer is None:
            host.error(
                "Open a 4D STEM dataset first (File > Open, or File > Open Sample > "
                "napari-emcal) and choose it as the 4D dataset."
            )
            return False
        if host.task.running:
            host.status.value = "another task is running: cancel it first"
            return False
        start = host.valid_params()
        if start is None:
            return False
        free, data = tuple(self._free()), layer.data
        token = session.begin_calibration(start)

        def work(report):
            def progress(fraction, params):
                if not session.is_current(token):
                    raise Cancelled  # the dock now shows other data: stop at once
                report(fraction)
                if params is not None:
                    session.offer_live(token, params)  # shown at the next poll

            wait_for_kernels()  # compiled in a subprocess, never holding the window's GIL
            if refine:
                return calibrate(data, start, free=free, progress=progress)
            return estimate(data, start, free=free, progress=progress)

        label = "optimising the twin" if refine else "estimating the twin"
        return host.task.start(
            label,
            work,
            lambda result: self._calibrated(token, result, free),
            on_error=lambda exc: self._stopped(token, exc),
        )

    def _calibrated(self, token: int, result, free) -> None:
        if not self.session.calibration_done(token, result, free):
            self.status.value = "the dataset changed during the calibration: its result is dropped"
            return
        # the twin as the controls hold it (rounded to their decimals): while it is
        # unchanged, what is saved is this calibration, with its standard errors
        self.session.mark_shown(self.host.params())
        sigma = getattr(result, "uncertainty", None) or {}
        self.host.twin.descan.show_sigma(sigma.get("descan"))
        self.host.show_result()
        self.status.value = describe(result)

    def _stopped(self, token: int, exc) -> None:
        """A calibration that failed, was cancelled or lost its dataset changes nothing:
        the controls show the parameters from before it."""
        if not self.session.is_current(token):
            self.status.value = (
                "the dataset changed during the calibration: it was stopped, nothing changed"
            )
            self.host.status.value = self.status.value
            return
        self.session.calibration_stopped(token, self.host.twin_or_none())
        self.status.value = "cancelled" if isinstance(exc, Cancelled) else "failed: see the message"

    def accept(self) -> None:
        """Keep the calibrated parameters (also on the layer, for the dataset check, and in
        the calibration history)."""
        layer, params = self.host.layer.value, self.host.params()
        accepted = self.session.accept(params)
        self.status.value = "accepted"
        if layer is None:
            return
        result = accepted.result if accepted is not None else None
        uncertainty = accepted.uncertainty if accepted is not None else {}
        record_calibration(layer, params.scan_rotation, params.flip_y, uncertainty)
        if result is not None and not isinstance(result, TwinParams):
            values, sigma = history_values(result)
            kept = keep_in_history("overfocus", values, sigma, source=layer.name)
            self.status.value = f"accepted; {kept}"
            self.history.refresh()

    def revert(self) -> None:
        """Go back to the parameters from before the calibration."""
        self.session.revert(self.host.valid_params())
        self.status.value = "reverted to the parameters before the calibration"


def describe(result) -> str:
    """One line for a calibration: the values, and for an optimisation their standard
    errors and how certain the handedness is."""
    params = result if isinstance(result, TwinParams) else result.params
    summary = (
        f"rotation {params.scan_rotation:.3f}°, flip {params.flip_y}, "
        f"overfocus {format_si(params.overfocus, 'µm', 4)}"
    )
    if params.has_descan:
        (a, b), (c, d) = params.descan
        summary += f", descan [[{a:.4f}, {b:.4f}], [{c:.4f}, {d:.4f}]] px/px"
    if isinstance(result, TwinParams):
        return f"estimate: {summary}. Accept, Revert or Optimise."
    sigma = result.uncertainty
    errors = []
    if "scan_rotation" in sigma:
        errors.append(f"scan_rotation ± {sigma['scan_rotation']:.3f}°")
    if "overfocus" in sigma:
        errors.append(f"overfocus ± {format_si(sigma['overfocus'], 'µm', 4)}")
    if "descan" in sigma:
        errors.append(f"descan ± {np.max(sigma['descan']):.4f} px/px")
    margin = (
        f"; handedness {result.flip_margin:.0f} σ from the other"
        if result.flip_margin is not None
        else ""
    )
    return (
        f"optimised ({result.n_evaluations} evaluations, correlation {result.score:.3f}): "
        f"{summary}; {', '.join(errors)}{margin}. Accept or Revert."
    )
