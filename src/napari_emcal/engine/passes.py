"""A pass over every frame of a dataset, declared once and run anywhere.

A tool describes its pass as a :class:`FramePass`: the buffers it accumulates into
(:class:`Buffer`), what it computes once before the frames arrive
(:meth:`~FramePass.prepare`),
the kernel that adds a block of frames (:meth:`~FramePass.process`) and how the filled
buffers become its result (:meth:`~FramePass.finish`). The engine runs that one
description in this process (:func:`run_local`) or as a LiberTEM UDF
(:class:`~napari_emcal.engine.udf.PassUDF`) on an inline, threaded or dask.distributed
executor, so the same kernel serves every path, in the manner of LiberTEM's UDFs.

Merging is fixed by the buffer's kind: ``"nav"`` buffers hold one entry per scan position
(each position is written by exactly one block), ``"sig"`` and ``"single"`` buffers are
sums over frames (added when partial results meet).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .blocks import iter_blocks, validate_4d
from .executors import check_executor

__all__ = ["Buffer", "FramePass", "run_local", "run_pass"]

KINDS = ("nav", "sig", "single")


@dataclass(frozen=True)
class Buffer:
    """A result buffer of a pass.

    Attributes
    ----------
    kind : {"nav", "sig", "single"}
        One entry per scan position, one per detector pixel, or one for the whole pass.
    extra_shape : tuple of int
        Shape of each entry.
    dtype : numpy dtype
    """

    kind: str
    extra_shape: tuple[int, ...] = ()
    dtype: Any = np.float64

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"buffer kind must be one of {KINDS}; got {self.kind!r}")

    def shape(self, scan_shape, detector_shape) -> tuple[int, ...]:
        """Full shape of the buffer for a whole dataset."""
        lead = {"nav": tuple(scan_shape), "sig": tuple(detector_shape), "single": ()}
        return lead[self.kind] + tuple(self.extra_shape)


class FramePass:
    """What a tool declares to have the engine run a pass over every frame.

    Subclasses implement :meth:`buffers`, :meth:`process` and :meth:`finish`, and may
    override :meth:`prepare`. Instances must be picklable (they travel to workers).
    """

    def buffers(self, scan_shape, detector_shape) -> dict[str, Buffer]:
        """The buffers the pass fills, by name."""
        raise NotImplementedError

    def prepare(self, scan_shape, detector_shape) -> Any:
        """Work done once per run (per worker on a cluster) before any frame: plans,
        weights. Passed to :meth:`process` and :meth:`finish` as ``task``."""
        return None

    def process(
        self, buffers: Mapping[str, np.ndarray], frames: np.ndarray, scan_y, scan_x, task
    ) -> None:
        """Add a block of frames ``(n, dy, dx)`` recorded at ``(scan_y, scan_x)``.

        ``buffers["name"]`` is, for a ``"nav"`` buffer, ``(n, *extra_shape)`` with one entry
        per frame of the block (to be assigned); for ``"sig"``, ``(dy, dx, *extra_shape)``;
        for ``"single"``, ``extra_shape`` (both to be added to).
        """
        raise NotImplementedError

    def finish(self, buffers: Mapping[str, np.ndarray], scan_shape, detector_shape, task):
        """The pass's result from the filled buffers (``"nav"`` ones scan-shaped)."""
        raise NotImplementedError


def _allocate(declared: Mapping[str, Buffer], scan_shape, detector_shape):
    return {
        name: np.zeros(b.shape(scan_shape, detector_shape), dtype=b.dtype)
        for name, b in declared.items()
    }


def run_local(data, frame_pass: FramePass, progress: Callable[[float], object] | None = None):
    """Run ``frame_pass`` over every block of ``data`` in this process.

    ``progress`` is called with the fraction of frames done after each block; it may
    raise :class:`~napari_emcal.errors.Cancelled` to stop the pass.
    """
    scan_shape, detector_shape = validate_4d(data)
    declared = frame_pass.buffers(scan_shape, detector_shape)
    task = frame_pass.prepare(scan_shape, detector_shape)
    full = _allocate(declared, scan_shape, detector_shape)
    flat_nav = {
        name: full[name].reshape((-1,) + declared[name].extra_shape)
        for name, b in declared.items()
        if b.kind == "nav"
    }
    total, done = scan_shape[0] * scan_shape[1], 0
    for frames, scan_y, scan_x in iter_blocks(data):
        index = scan_y * scan_shape[1] + scan_x
        contiguous = index[-1] - index[0] == len(index) - 1 and bool(np.all(np.diff(index) == 1))
        views = dict(full)
        for name, flat in flat_nav.items():
            views[name] = (
                flat[index[0] : index[-1] + 1]
                if contiguous
                else np.zeros((len(index),) + flat.shape[1:], flat.dtype)
            )
        frame_pass.process(views, frames, scan_y, scan_x, task)
        if not contiguous:
            for name, flat in flat_nav.items():
                flat[index] = views[name]
        done += len(frames)
        if progress is not None:
            progress(done / total)
    return frame_pass.finish(full, scan_shape, detector_shape, task)


def run_pass(
    data,
    frame_pass: FramePass,
    *,
    executor: str | None = None,
    progress: Callable[[float], object] | None = None,
):
    """Run a pass where ``executor`` says (see :mod:`napari_emcal.engine`): in this process
    for arrays on ``"local"``, else through LiberTEM (a path is read by the workers)."""
    executor = check_executor(executor)
    if executor != "local" or isinstance(data, (str, os.PathLike)):
        from .udf import run_on_libertem  # LiberTEM is heavy: imported when used

        return run_on_libertem(data, executor, frame_pass, progress)
    return run_local(data, frame_pass, progress)
