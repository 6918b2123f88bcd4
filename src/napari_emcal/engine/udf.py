"""Any :class:`~napari_emcal.engine.passes.FramePass` as a LiberTEM UDF, so a pass runs on
LiberTEM's inline, threaded or dask.distributed executors with the same kernel as in this
process. Imported only when such an executor is asked for (LiberTEM is heavy); it does not
import :mod:`.passes` (which imports it when needed), so the two never import each other."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from libertem.udf.base import UDF

from .executors import libertem_dataset, make_context, run_udf

__all__ = ["PassUDF", "run_on_libertem"]


class PassUDF(UDF):
    """A LiberTEM UDF that runs any :class:`FramePass` (one per-partition kernel,
    merged by buffer kind); :meth:`pass_result` turns a run's buffers into the result."""

    def __init__(self, frame_pass, **kwargs):
        super().__init__(frame_pass=frame_pass, **kwargs)

    def _shapes(self):
        scan_shape = tuple(self.meta.dataset_shape.nav)
        if len(scan_shape) != 2:
            raise ValueError(f"a pass needs a 2D scan, got navigation shape {scan_shape}")
        return scan_shape, tuple(self.meta.dataset_shape.sig)

    def get_preferred_input_dtype(self):
        return self.USE_NATIVE_DTYPE

    def _declared(self):
        """The pass's buffers for this dataset's shapes, asked once (merge runs per
        partition)."""
        shapes = self._shapes()
        cached = getattr(self, "_declared_buffers", None)
        if cached is None or cached[0] != shapes:
            cached = self._declared_buffers = (shapes, self.params.frame_pass.buffers(*shapes))
        return cached[1]

    def get_result_buffers(self):
        declared = self._declared()
        return {
            name: self.buffer(kind=b.kind, extra_shape=b.extra_shape, dtype=b.dtype)
            for name, b in declared.items()
        }

    def get_task_data(self):
        return {"task": self.params.frame_pass.prepare(*self._shapes())}

    def process_partition(self, partition):
        n = partition.shape[0]
        coords = self.meta.coordinates.reshape(n, -1)
        buffers = {name: getattr(self.results, name) for name in self.results.keys()}
        self.params.frame_pass.process(
            buffers, np.asarray(partition), coords[:, 0], coords[:, 1], self.task_data.task
        )

    def merge(self, dest, src):
        for name, b in self._declared().items():
            if b.kind == "nav":
                getattr(dest, name)[:] = getattr(src, name)
            else:
                getattr(dest, name)[:] += getattr(src, name)

    def pass_result(self, buffers: Mapping[str, Any], scan_shape, detector_shape):
        """The pass's result from the buffers a run returned."""
        frame_pass = self.params.frame_pass
        arrays = {name: np.asarray(value) for name, value in buffers.items()}
        for name, b in frame_pass.buffers(scan_shape, detector_shape).items():
            arrays[name] = arrays[name].reshape(b.shape(scan_shape, detector_shape))
        return frame_pass.finish(
            arrays, scan_shape, detector_shape, frame_pass.prepare(scan_shape, detector_shape)
        )


def run_on_libertem(source, executor: str, frame_pass, progress=None):
    """Run ``frame_pass`` over ``source`` (array or path) on a LiberTEM executor
    (``"local"`` means LiberTEM's inline one, for a path), closing the context afterwards."""
    udf = PassUDF(frame_pass)
    ctx = make_context("inline" if executor == "local" else executor)
    try:
        dataset = libertem_dataset(ctx, source)
        buffers = run_udf(ctx, dataset, udf, progress)
        shape = tuple(dataset.shape)
        return udf.pass_result(buffers, shape[:2], shape[2:])
    finally:
        ctx.close()
