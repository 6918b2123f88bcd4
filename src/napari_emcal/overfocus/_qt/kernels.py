"""The overfocus kernels in the docks' workers: compiled by a subprocess, not here."""

from __future__ import annotations

from ..._qt import kernels
from .. import compile_cache

__all__ = ["kernels_ready", "wait_for_kernels"]


def kernels_ready():
    """Start compiling the overfocus kernels into numba's cache in a subprocess (once)."""
    return kernels.kernels_ready(
        compile_cache.MODULE, compile_cache.STEPS, compile_cache.DESCRIPTION
    )


def wait_for_kernels() -> None:
    """In a worker, before the first pass or calibration: until the subprocess is done."""
    kernels.wait_for_kernels(compile_cache.MODULE)
