"""Timing helper of the benchmark scripts (run as scripts, so imported as ``_timing``)."""

from __future__ import annotations

import time


def best_of(function, repeats=3):
    """(shortest wall time in seconds, the last result) of ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = function()
        times.append(time.perf_counter() - start)
    return min(times), out
