"""The overfocus kernels in the docks' workers: compiled by a subprocess, not here."""

from __future__ import annotations

import os

from ..._qt import kernels
from .. import compile_cache

__all__ = ["kernels_ready", "wait_for_kernels"]


def kernels_ready():
    """Start compiling the overfocus kernels into numba's cache in a subprocess (once)."""
    return kernels.kernels_ready(
        compile_cache.MODULE, compile_cache.STEPS, compile_cache.DESCRIPTION, _in_cache
    )


def _in_cache() -> bool:
    """Whether numba's cache holds the pass kernel's index (a machine that compiled it
    before): then it loads in the docks' workers in a moment, no subprocess needed. A
    dtype missing from it compiles in a worker, as before."""
    try:
        from ..kernels import _accumulate_runs

        return os.path.exists(_accumulate_runs._cache._cache_file._index_path)
    except Exception:  # numba's internals moved: compile in the subprocess to be safe
        return False


def wait_for_kernels() -> None:
    """In a worker, before the first pass or calibration: until the subprocess is done."""
    kernels.wait_for_kernels(compile_cache.MODULE)
