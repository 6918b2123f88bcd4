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

    try:
        process = subprocess.Popen(
            [sys.executable, "-m", module],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=dict(os.environ),
            # below the window's priority: on a machine with few cores the window keeps
            # its share while the compiler runs
            preexec_fn=_lower_priority if os.name == "posix" else None,
        )
    except OSError:  # no interpreter to run (a frozen application)
        event.set()
        return event

    def watch():
        # a thread of its own sets the event: a napari worker can be dropped unstarted or
        # stopped between steps (a viewer closing), and waiting workers must never hang
        try:
            process.wait(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
        finally:
            event.set()

    threading.Thread(target=watch, name=f"wait for {module}", daemon=True).start()

    def steps_done():  # only what the activity dock shows
        for line in process.stdout:
            if line.startswith("done"):
                yield

    try:
        start_worker(
            steps_done,
            lambda _result: None,
            lambda _exc: None,
            progress={"total": steps, "desc": description},
        )
    except Exception:  # no progress shown: the compile goes on all the same
        pass
    return event


def _lower_priority() -> None:
    os.nice(5)


def wait_for_kernels(module: str, timeout: float = TIMEOUT_S) -> None:
    """In a worker: wait until the compile subprocess of ``module`` has ended (at once when
    it was never started, or has ended)."""
    event = _ready.get(module)
    if event is not None:
        event.wait(timeout)
