"""Compiled kernels made ready without freezing the window.

numba compiles a kernel on its first call; compiling holds the calling process's GIL for
seconds, so a compile in napari's process freezes the window even from a worker thread.
:func:`kernels_ready` compiles them instead in a subprocess that fills numba's on-disk
cache (a tool's module run as ``python -m MODULE``, printing ``done …`` after each step),
shown in napari's activity dock; the docks' workers wait for it (:func:`wait_for_kernels`,
which releases the GIL while waiting) and then load the kernels from the cache. Once per
module and napari process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading

__all__ = ["kernels_ready", "wait_for_kernels"]

#: Longest wait for a compile subprocess (s): past it a worker compiles in-process, as
#: without it (a slower first use, never stuck).
TIMEOUT_S = 600.0

_lock = threading.Lock()
_ready: dict[str, threading.Event] = {}


def kernels_ready(module: str, steps: int, description: str, cached=None) -> threading.Event:
    """Start (once per process) ``python -m module``, which compiles kernels into numba's
    cache in ``steps`` steps, shown as ``description`` in napari's activity dock. The
    returned event is set when it has ended, whether it succeeded or not (a failure only
    means that the first use compiles in-process, as before). ``cached()`` true: numba's
    cache holds the kernels already (loading them is quick): nothing to start."""
    from .tasks import start_worker

    with _lock:
        if module in _ready:
            return _ready[module]
        event = _ready[module] = threading.Event()
    if cached is not None and cached():
        event.set()
        return event

    def compile_in_subprocess():
        try:
            try:
                process = subprocess.Popen(
                    [sys.executable, "-m", module],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    text=True,
                    env=dict(os.environ),
                    # below the window's priority: on a machine with few cores the
                    # window keeps its share while the compiler runs
                    preexec_fn=_lower_priority if os.name == "posix" else None,
                )
            except OSError:  # no interpreter to run (a frozen application)
                return False
            for line in process.stdout:  # one line per step done
                if line.startswith("done"):
                    yield
            return process.wait(timeout=TIMEOUT_S) == 0
        finally:  # from the worker itself: waiting workers need no event loop to go on
            event.set()

    try:
        start_worker(
            compile_in_subprocess,
            lambda _ok: None,
            lambda _exc: None,
            progress={"total": steps, "desc": description},
        )
    except Exception:  # a worker that cannot start must not block the docks
        event.set()
    return event


def _lower_priority() -> None:
    os.nice(5)


def wait_for_kernels(module: str, timeout: float = TIMEOUT_S) -> None:
    """In a worker: wait until the compile subprocess of ``module`` has ended (at once when
    it was never started, or has ended)."""
    event = _ready.get(module)
    if event is not None:
        event.wait(timeout)
