"""How long the window was frozen: the longest gap between ticks of a timer on the event loop.

A ``QTimer`` fires every ``interval_ms`` while the event loop runs; whenever the GUI thread
is busy (a computation on it, a worker holding the GIL, a large layer update) the next tick
comes late. The longest gap between ticks is the longest time the window could not repaint
or react to the user: what a user feels as a freeze, which the wall time of an action does
not show.
"""

from __future__ import annotations

import time

__all__ = ["Heartbeat", "dock_idle"]


class Heartbeat:
    """Ticks of the Qt event loop, to measure its longest gap.

    Use as a context manager around the work whose freezes are measured, while the event
    loop runs (``QApplication.processEvents`` or a running application)::

        with Heartbeat() as beat:
            widget.run()
            wait_until_done()
        beat.longest  # seconds
    """

    def __init__(self, interval_ms: int = 10):
        from qtpy.QtCore import QTimer

        self.interval = interval_ms / 1000
        self.ticks: list[float] = []
        self._timer = QTimer()
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        self.ticks.append(time.perf_counter())

    def start(self) -> Heartbeat:
        self.ticks = [time.perf_counter()]
        self._timer.start()
        return self

    def stop(self) -> None:
        self._timer.stop()
        self.ticks.append(time.perf_counter())

    def __enter__(self) -> Heartbeat:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def gaps(self) -> list[float]:
        """Seconds between consecutive ticks (the first from ``start``, the last to ``stop``)."""
        return [b - a for a, b in zip(self.ticks, self.ticks[1:])]

    @property
    def longest(self) -> float:
        """The longest gap in seconds: how long the event loop was blocked at most."""
        return max(self.gaps, default=0.0)

    def watch(self, action, done, timeout: float = 300.0) -> float:
        """Run ``action()``, then the event loop until ``done()`` is true; the longest gap
        (s) from the click to the result on screen. TimeoutError past ``timeout`` s."""
        from qtpy.QtWidgets import QApplication

        end = time.monotonic() + timeout
        with self:
            action()
            while not done():
                if time.monotonic() > end:
                    raise TimeoutError(f"the action did not finish in {timeout:g} s")
                QApplication.processEvents()
                time.sleep(0.001)
            QApplication.processEvents()  # what the result drew last
        return self.longest

    def count_over(self, seconds: float) -> int:
        """How many gaps were longer than ``seconds``."""
        return sum(gap > seconds for gap in self.gaps)


def dock_idle(widget) -> bool:
    """Whether a dock has nothing running or being shown: its long task, its live updates, a
    worker (what the responsiveness tests and benchmark wait for before and after an action)."""
    task = getattr(widget, "task", None)
    if task is not None and task.running:
        return False
    updates = getattr(widget, "updates", None)
    if updates is not None and not updates.idle:
        return False
    return getattr(widget, "_worker", None) is None and getattr(widget, "_reading", None) is None
