"""What an overfocus calibration session knows, apart from any widget: the dataset it is
about, the twin's parameters last settled (typed, loaded or accepted), a calibration
running or waiting for Accept, the accepted calibration and the last images computed.

The dock's sections observe it (its signals) and call it; none of them reaches into
another. A session belongs to one dataset: when the dock is pointed at other data
(another layer, another dataset of the file, new frames), :meth:`retarget` forgets
everything derived from the previous one, so that a re-targeted dock and a fresh dock
give the same results. Results of a run started on the previous dataset are then
dropped (:meth:`is_current`).

No Qt or napari imports: tested on its own (napari-animation's ``Animation`` model
follows the same pattern).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from psygnal import Signal

from .twin import TwinParams

__all__ = ["Calibrated", "OverfocusSession"]


@dataclass(frozen=True)
class Calibrated:
    """A calibration as it came back: the result (a ``CalibrationResult`` from Optimise, or
    ``TwinParams`` from Estimate) and the parameters the calibration set free."""

    result: object
    free: tuple[str, ...] = ()

    @property
    def params(self) -> TwinParams:
        return self.result if isinstance(self.result, TwinParams) else self.result.params

    @property
    def uncertainty(self) -> dict[str, float]:
        """Standard errors (of an optimisation; empty for an estimate)."""
        return dict(getattr(self.result, "uncertainty", None) or {})


@dataclass
class _Derived:
    """Everything the session derives from its dataset (forgotten on :meth:`retarget`)."""

    settled: TwinParams | None = None  # what a stopped or orphaned run goes back to
    running: int | None = None  # the run token of the calibration in progress
    live: TwinParams | None = None  # best so far, handed over by the worker
    pending: Calibrated | None = None  # waits for Accept or Revert
    shown: TwinParams | None = None  # the twin as the controls show the pending result
    accepted: Calibrated | None = None
    images: dict[str, np.ndarray] = field(default_factory=dict)
    images_params: TwinParams | None = None


class OverfocusSession:
    """The state of one overfocus dock, with signals for its views.

    Signals
    -------
    show_params(params, source, names)
        The controls should show ``params`` (``names``: which fields ``source`` gave; None:
        all).
    calibration_changed()
        A calibration started, came back, was accepted, reverted or stopped.
    images_changed()
        New images (:attr:`last_images`) for :attr:`last_params`.
    retargeted()
        The session is now about other data: everything derived before is forgotten.
    """

    show_params = Signal(object, object, object)
    calibration_changed = Signal()
    images_changed = Signal()
    retargeted = Signal()

    def __init__(self):
        self.dataset: object = None
        self._token = 0
        self._derived = _Derived()

    # -- the dataset -------------------------------------------------------------------------
    def retarget(self, dataset: object, start: TwinParams | None = None) -> None:
        """The session is now about ``dataset`` (any identity; None: no data), whose twin
        starts at ``start`` (e.g. what its file records). A run still going belongs to
        the previous data: its result will be dropped."""
        self.dataset = dataset
        self._token += 1
        self._derived = _Derived(settled=start)
        self.retargeted.emit()
        self.calibration_changed.emit()
        self.images_changed.emit()

    def is_current(self, token: int) -> bool:
        """Whether the run that got ``token`` from :meth:`begin_calibration` or
        :meth:`run_token` is about the current data."""
        return token == self._token

    def run_token(self) -> int:
        """A token for a run (e.g. a full pass) about the current data."""
        return self._token

    # -- the twin -----------------------------------------------------------------------------
    def settle(self, params: TwinParams | None) -> None:
        """The user's parameters while no calibration runs (typed, loaded, prefilled)."""
        if self._derived.running is None and self._derived.pending is None:
            self._derived.settled = params

    @property
    def settled(self) -> TwinParams | None:
        """The parameters last settled: what a cancelled, failed or orphaned run leaves."""
        return self._derived.settled

    def use(self, params: TwinParams, source: str, names=None) -> None:
        """Show ``params`` (from ``source``: a loaded file, another dock, ...)."""
        self.settle(params)
        self.show_params.emit(params, source, names)

    # -- a calibration ------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._derived.running is not None

    @property
    def pending(self) -> Calibrated | None:
        """The calibration waiting for Accept or Revert."""
        return self._derived.pending

    @property
    def accepted(self) -> Calibrated | None:
        """The calibration last accepted on this data."""
        return self._derived.accepted

    @property
    def last_calibration(self):
        """The result of the last calibration on this data (pending or accepted), or None."""
        latest = self._derived.pending or self._derived.accepted
        return latest.result if latest is not None else None

    def begin_calibration(self, start: TwinParams) -> int:
        """A calibration starts from ``start``; returns its token."""
        derived = self._derived
        if derived.pending is None:
            derived.settled = start
        derived.running, derived.live = self._token, None
        self.calibration_changed.emit()
        return self._token

    def offer_live(self, token: int, params: TwinParams) -> None:
        """The best parameters so far (callable from the worker thread)."""
        if self.is_current(token):
            self._derived.live = params

    def take_live(self) -> TwinParams | None:
        """The parameters handed over since the last call (GUI thread), or None."""
        live, self._derived.live = self._derived.live, None
        return live

    def calibration_done(self, token: int, result, free=()) -> bool:
        """A calibration came back; False when it is about data no longer in front of the
        dock (nothing changes). Its parameters are shown (:attr:`show_params`)."""
        if not self.is_current(token):
            return False
        derived = self._derived
        derived.running, derived.live = None, None
        derived.pending = Calibrated(result, tuple(free))
        self.show_params.emit(
            derived.pending.params, "computed by the automatic calibration", list(free)
        )
        self.calibration_changed.emit()
        return True

    def mark_shown(self, params: TwinParams) -> None:
        """The twin as the controls show the pending calibration (rounded to their
        decimals): while it is unchanged, the calibration's standard errors apply."""
        self._derived.shown = params

    def calibration_stopped(self, token: int, current: TwinParams | None) -> TwinParams | None:
        """A calibration was cancelled or failed: the last settled parameters are shown
        again (when they differ from the controls' ``current``, e.g. after the worker
        handed over its best so far); returns them. None when the run was about previous
        data (nothing changes)."""
        if not self.is_current(token):
            return None
        derived = self._derived
        derived.running, derived.live = None, None
        self.calibration_changed.emit()
        if derived.pending is None and derived.settled not in (None, current):
            self.show_params.emit(derived.settled, None, None)
        return derived.settled

    def accept(self, current: TwinParams) -> Calibrated | None:
        """Keep the pending calibration (with the controls' ``current`` twin)."""
        derived = self._derived
        accepted, derived.pending = derived.pending, None
        if accepted is not None:
            derived.accepted = accepted
        derived.settled = current
        self.calibration_changed.emit()
        return accepted

    def revert(self, current: TwinParams | None = None) -> TwinParams | None:
        """Drop the pending calibration; the settled parameters are shown again (when they
        differ from ``current``). Returns them."""
        derived = self._derived
        derived.pending = None
        if derived.settled is not None and derived.settled != current:
            self.show_params.emit(derived.settled, None, None)
        self.calibration_changed.emit()
        return derived.settled

    def uncertainty(self, current: TwinParams) -> dict[str, float]:
        """Standard errors of the last optimisation while the twin still holds its result
        (none once a parameter has been changed by hand)."""
        latest = self._derived.pending or self._derived.accepted
        if latest is None or self._derived.shown != current:
            return {}
        return latest.uncertainty

    # -- images -------------------------------------------------------------------------------
    def images_computed(self, token: int, images: dict, params: TwinParams) -> bool:
        """Images computed for ``params``; False (dropped) when about previous data."""
        if not self.is_current(token):
            return False
        self._derived.images, self._derived.images_params = images, params
        self.images_changed.emit()
        return True

    @property
    def last_images(self) -> dict[str, np.ndarray]:
        return self._derived.images

    @property
    def last_params(self) -> TwinParams | None:
        return self._derived.images_params
