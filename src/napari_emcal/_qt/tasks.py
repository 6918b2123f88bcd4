"""One long computation at a time in a worker thread, with a progress bar and Cancel."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator

from napari.qt.threading import create_worker
from napari.utils import progress as napari_progress
from napari.utils.notifications import show_error
from qtpy import sip
from qtpy.QtCore import Qt, QTimer
from qtpy.QtGui import QKeySequence
from qtpy.QtWidgets import QShortcut

from ..errors import Cancelled

__all__ = ["LongTask", "NewestWins", "Steps", "debounced", "start_worker", "task_controls"]


def start_worker(
    work: Callable[[], object],
    on_result: Callable,
    on_error: Callable,
    on_finished: Callable | None = None,
    progress: dict | None = None,
):
    """Run ``work()`` in a napari worker thread; ``on_result(value)``, ``on_error(exc)`` and
    ``on_finished()`` run in the GUI thread. Returns the started worker.

    With ``progress={"total": n, "desc": text}``, ``work`` is a generator that yields once
    per step and returns its value: napari shows the steps in its activity dock.

    The handlers are connected before the thread starts: a worker whose error has no
    handler re-raises it in Qt.
    """
    connect = {"returned": on_result, "errored": on_error}
    if on_finished is not None:
        connect["finished"] = on_finished
    options = {"_progress": progress} if progress else {}
    worker = create_worker(work, _connect=connect, _start_thread=False, **options)
    worker.start()
    return worker


def task_controls(cancel_tip: str = "stop the running task (Esc)"):
    """The progress bar and Cancel button a :class:`LongTask` drives (one look for all)."""
    from magicgui import widgets

    progress = widgets.ProgressBar(
        label="Progress",
        tooltip="progress of the running task; also in napari's activity dock",
        value=0,
        min=0,
        max=100,
    )
    cancel = widgets.PushButton(text="Cancel", tooltip=cancel_tip, enabled=False)
    return progress, cancel


def debounced(parent, interval_ms: int, callback: Callable[[], None]) -> QTimer:
    """A single-shot timer owned by ``parent`` that calls ``callback``: ``.start()`` it on
    every change, and only the last of a burst of quick changes runs."""
    timer = QTimer(parent)  # parented: it dies with the widget
    timer.setSingleShot(True)
    timer.setInterval(interval_ms)
    timer.timeout.connect(callback)
    return timer


class Steps:
    """Shows a result in small steps, one per turn of the event loop, so that the window
    repaints and reacts between them: a result handler that returns a generator (a
    ``yield`` after each layer it adds or updates) is run this way. A new generator
    replaces one still running (the newest result wins; it updates every layer again).
    """

    def __init__(self, parent):
        self._parent = parent
        self._steps: Iterator | None = None
        self._then: list[Callable[[], None]] = []
        self._timer = QTimer(parent)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._step)

    @property
    def busy(self) -> bool:
        return self._steps is not None

    def show(self, value) -> None:
        """Run ``value``'s steps if it is a generator (what a result handler returned)."""
        if inspect.isgenerator(value):
            self._steps = value
            self._timer.start()

    def after(self, callback: Callable[[], None]) -> None:
        """``callback()`` once the steps are done (at once when none run)."""
        if self._steps is None:
            callback()
        else:
            self._then.append(callback)

    def _step(self) -> None:
        if sip.isdeleted(self._parent):
            return
        try:
            next(self._steps)
        except StopIteration:
            self._done()
        except Exception as exc:
            self._done()
            show_error(f"showing the result failed: {exc}")

    def _done(self) -> None:
        self._timer.stop()
        self._steps = None
        then, self._then = self._then, []
        for callback in then:
            callback()

    def finish(self) -> None:
        """Run the remaining steps now (for scripts that need the layers at once)."""
        while self._steps is not None:
            self._step()


class NewestWins:
    """Recompute on request, the newest request winning: requests arriving in a burst are
    debounced into one; at most one worker runs, and a request made while it runs starts
    one more run when it ends; a result computed before the newest request is dropped.

    ``prepare()`` is called in the GUI thread when a run is due and returns ``(work,
    on_result, on_error)``, or None to run nothing now (inputs incomplete).
    """

    def __init__(self, parent, interval_ms: int, prepare: Callable[[], tuple | None]):
        self.generation = 0
        self._parent = parent
        self._prepare = prepare
        self._worker = None
        self._again = False
        self._timer = debounced(parent, interval_ms, self.run_now)
        self.steps = Steps(parent)

    @property
    def idle(self) -> bool:
        """Nothing running, due, queued or being shown."""
        return (
            self._worker is None
            and not self._timer.isActive()
            and not self._again
            and not self.steps.busy
        )

    def request(self, invalidate: bool = True) -> None:
        """A new input: the run after a short pause uses it. With ``invalidate`` (a changed
        parameter) results computed before are dropped; without (more of the same data
        arrived, as in a live acquisition) a result on the way is still shown: else a
        stream of arrivals faster than one computation would never show anything."""
        if invalidate:
            self.generation += 1
        self._timer.start()

    def is_current(self, generation: int) -> bool:
        return generation == self.generation

    def run_now(self) -> None:
        """Start a run for the current inputs, or queue one behind the running one."""
        if self._worker is not None:
            self._again = True
            return
        job = self._prepare()
        if job is None:
            return
        work, on_result, on_error = job
        generation = self.generation

        def returned(value):
            # a closed dock has nowhere to show it
            if self.is_current(generation) and not sip.isdeleted(self._parent):
                self.steps.show(on_result(value))  # a generator is shown in steps

        def errored(exc):
            if not sip.isdeleted(self._parent):
                on_error(exc)

        self._worker = start_worker(work, returned, errored, self._finished)

    def _finished(self) -> None:
        self._worker = None
        if self._again:
            self._again = False
            self.run_now()


class LongTask:
    """Runs ``work(report)`` off the GUI thread; ``report(fraction)`` moves the progress bar
    (polled every 0.1 s) and raises :class:`~napari_emcal.errors.Cancelled` once Cancel was
    pressed. Errors are shown in ``status`` and as a notification.

    Parameters
    ----------
    parent : QWidget
        Owns the polling timer.
    progress : magicgui ProgressBar (0-100)
    cancel_button : magicgui PushButton
    status : magicgui Label
    on_poll : callable, optional
        Called in the GUI thread at every poll (e.g. to show intermediate results).
    report_error : callable, optional
        Shows an error message (default: in ``status`` and as a notification).
    """

    def __init__(
        self,
        parent,
        progress,
        cancel_button,
        status,
        on_poll: Callable[[], None] | None = None,
        report_error: Callable[[str], None] | None = None,
    ):
        self.progress, self.cancel_button, self.status = progress, cancel_button, status
        self._parent = parent
        self._on_poll = on_poll
        self._report_error = report_error or self._show_error
        self.worker = None
        self.steps = Steps(parent)  # a result handler's generator, shown in steps
        self._cancel_requested = False
        self._fraction = 0.0
        self._timer = QTimer(parent)
        self._timer.timeout.connect(self._poll)
        self._activity = None  # napari's progress in the activity dock while a task runs
        cancel_button.enabled = False
        cancel_button.changed.connect(lambda: self.cancel())
        # the bar and Cancel show only while a task runs: never "100 %" when idle
        progress.visible = cancel_button.visible = False
        # Esc anywhere in the widget cancels the running task
        shortcut = QShortcut(QKeySequence(Qt.Key.Key_Escape), parent)
        shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        shortcut.activated.connect(self.cancel)
        self._shortcut = shortcut

    @property
    def running(self) -> bool:
        """A worker runs, or its result is still being shown (in steps)."""
        return self.worker is not None or self.steps.busy

    def start(
        self,
        label: str,
        work: Callable,
        on_result: Callable,
        on_finished: Callable | None = None,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> bool:
        """Start ``work``; False (nothing started) while another task runs.

        ``on_error(exc)`` runs after an error or a cancellation has been reported;
        ``on_finished()`` after every end. ``on_result`` may return a generator: it is run
        one step per turn of the event loop (:class:`Steps`), and the task ends after it.
        """
        if self.running:
            return False
        self._cancel_requested, self._fraction = False, 0.0

        def run():
            def report(fraction):
                # a dock closed (or its viewer) stops its task at the next report: a live
                # acquisition then closes its connection instead of running on unseen
                if self._cancel_requested or self._closed:
                    raise Cancelled
                self._fraction = fraction  # read by the GUI thread's timer

            return work(report)

        def finished():
            self.steps.after(ended)  # once the result is shown

        def ended():
            self.worker = None
            self._close_activity()
            if self._closed:
                return
            self.cancel_button.enabled = False
            self.progress.value = 0
            self.progress.visible = self.cancel_button.visible = False
            self._timer.stop()
            if on_finished is not None:
                on_finished()

        def returned(value):
            if not self._closed:  # a closed dock has nowhere to show it
                self.steps.show(on_result(value))

        def errored(exc):
            if not self._closed:
                self._errored(exc, label, on_error)

        self.worker = create_worker(
            run,
            _connect={"returned": returned, "errored": errored, "finished": finished},
            _start_thread=False,
        )
        self.cancel_button.enabled = True
        self.progress.value = 0
        self.progress.visible = self.cancel_button.visible = True
        self.status.value = f"{label}… (Esc cancels)"
        self._activity = napari_progress(total=100, desc=label)
        self._timer.start(100)
        self.worker.start()
        return True

    @property
    def _closed(self) -> bool:
        """The dock (its Qt widget) is gone."""
        return sip.isdeleted(self._parent)

    def cancel(self) -> None:
        """Stop the running task at its next progress report."""
        if self.worker is not None:
            self._cancel_requested = True

    def _close_activity(self) -> None:
        if self._activity is not None:
            self._activity.close()
            self._activity = None

    def _poll(self):
        self.progress.value = int(100 * self._fraction)
        if self._activity is not None:
            step = self.progress.value - self._activity.n
            if step > 0:
                self._activity.update(step)
        if self._on_poll is not None:
            self._on_poll()

    def _errored(self, exc, label: str, on_error=None) -> None:
        if isinstance(exc, Cancelled):
            self.status.value = f"{label}: cancelled (the layers keep the last result)"
        else:
            self._report_error(str(exc))
        if on_error is not None:
            on_error(exc)

    def _show_error(self, message: str) -> None:
        self.status.value = message
        show_error(message)
