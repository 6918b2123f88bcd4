"""The engine: running a pass over every frame of a 4D dataset, wherever it is held and
wherever it should run. It knows blocks, executors and passes, and nothing about any tool.

- :mod:`.blocks`: validation, block-by-block reading of NumPy/memmap/Dask data, reduction
  (binning and scan stride) for previews.
- :mod:`.passes`: :class:`FramePass` (what a tool declares), :func:`run_local`,
  :func:`run_pass`.
- :mod:`.executors`: the executor names, LiberTEM contexts and datasets, and what a pass
  reads there (:func:`pass_source`).
- :mod:`.udf`: :class:`PassUDF`, any pass as a LiberTEM UDF (imported when used).
- :mod:`.descan`: the beam's walk on the detector (descan): its plane fit with standard
  errors, the per-frame compensation, any pass or dataset read with it undone;
  :mod:`.disk_centres`: the bright-field disk's centre in every frame, from its edge.
"""

from .blocks import BLOCK_BYTES, is_dask, iter_blocks, native_contiguous, reduce_data, validate_4d
from .executors import (
    EXECUTORS,
    check_executor,
    libertem_dataset,
    make_context,
    pass_source,
    run_udf,
)
from .passes import Buffer, FramePass, run_local, run_pass

__all__ = [
    "BLOCK_BYTES",
    "EXECUTORS",
    "Buffer",
    "FramePass",
    "PassUDF",
    "check_executor",
    "is_dask",
    "iter_blocks",
    "libertem_dataset",
    "make_context",
    "native_contiguous",
    "pass_source",
    "reduce_data",
    "run_local",
    "run_on_libertem",
    "run_pass",
    "run_udf",
    "validate_4d",
]


def __getattr__(name):
    if name in ("PassUDF", "run_on_libertem"):
        from . import udf

        return getattr(udf, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
