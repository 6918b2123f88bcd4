"""Where the heavy passes run: in this process, or on a LiberTEM executor.

``executor`` is one of

``"local"`` (default)
    In this process, block by block (NumPy/Numba kernels over a memmap or Dask array):
    no set-up cost, bounded memory.
``"inline"``, ``"threads"``
    LiberTEM's inline executor, or its local thread pool.
``"tcp://host:port"``
    The address of an existing dask.distributed scheduler, used through LiberTEM's
    ``DaskJobExecutor``: the workers read the file themselves, so the path must be
    readable on them.

The same UDF (per-partition kernel plus merge) runs on every LiberTEM executor, so the
results are the same wherever they run.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import InvalidParameterError

__all__ = [
    "EXECUTORS",
    "check_executor",
    "libertem_dataset",
    "make_context",
    "pass_source",
    "run_udf",
]

EXECUTORS = ("local", "inline", "threads")
#: Bytes of a file per LiberTEM partition (bounds a worker's memory).
PARTITION_BYTES = 128 * 2**20


def check_executor(executor: str | None) -> str:
    """The executor name, validated (None is ``"local"``)."""
    executor = "local" if executor in (None, "") else str(executor).strip()
    if executor in EXECUTORS or executor.startswith(("tcp://", "tls://", "ws://", "wss://")):
        return executor
    raise InvalidParameterError(
        f"executor must be one of {', '.join(EXECUTORS)} or a scheduler "
        f"address like tcp://host:8786; got {executor!r}"
    )


def pass_source(data, path, executor: str, *, as_read: bool = False):
    """What a pass reads: ``data`` in this process; on a LiberTEM executor the file ``path``
    the data came from (its workers open it themselves, the only way a cluster's workers get
    the frames without this process sending them) when that file holds ``data``'s frames as
    stored, else ``data``.

    A ``.npy`` file is checked (its shape on disk must be ``data``'s); another format is
    passed only when the caller says that ``data`` is the file ``as_read`` (no scan shape
    given or guessed: LiberTEM would arrange the frames of its own reading).
    """
    if executor == "local" or path is None:
        return data
    path = Path(path)
    if not path.is_file():
        return data
    if path.suffix.lower() != ".npy":
        return str(path) if as_read else data
    try:
        on_disk = np.load(path, mmap_mode="r").shape
    except (OSError, ValueError):
        return data
    return str(path) if tuple(on_disk) == tuple(np.shape(data)) else data


def make_context(executor: str, *, timeout_s: float = 20.0):
    """A LiberTEM ``Context`` for ``"inline"``, ``"threads"`` or a scheduler address.

    Raises
    ------
    InvalidParameterError
        ``"local"`` (which needs no context) or an unknown name, or a scheduler that
        cannot be reached (the message names the address).
    """
    from libertem.api import Context

    executor = check_executor(executor)
    if executor == "local":
        raise InvalidParameterError("the local executor runs without a LiberTEM context")
    if executor in ("inline", "threads"):
        return Context.make_with(executor)
    from libertem.executor.dask import DaskJobExecutor

    try:
        return Context(
            executor=DaskJobExecutor.connect(executor, client_kwargs={"timeout": timeout_s})
        )
    except (OSError, TimeoutError) as exc:
        raise InvalidParameterError(
            f"cannot reach the dask scheduler at {executor}: {exc}"
        ) from exc


def libertem_dataset(ctx, source, *, scan_shape=None, num_partitions: int | None = None):
    """A LiberTEM dataset of a file path (read on the workers) or of an array.

    NumPy arrays, memmaps and Dask arrays are accepted; a memmap of a ``.npy`` file is
    opened by path, so that workers read it themselves instead of receiving its bytes.
    ``num_partitions`` overrides LiberTEM's choice (more partitions: finer progress).
    """
    if num_partitions is None and isinstance(source, (str, os.PathLike, np.memmap)):
        # partitions are handed to a UDF whole: keep each near PARTITION_BYTES
        size = Path(source.filename if isinstance(source, np.memmap) else source).stat().st_size
        num_partitions = max(1, -(-size // PARTITION_BYTES))
    extra = {"num_partitions": int(num_partitions)} if num_partitions else {}
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.suffix.lower() == ".npy":
            return _npy_dataset(ctx, path, scan_shape, extra)
        kwargs = {"nav_shape": tuple(scan_shape)} if scan_shape else {}
        return ctx.load("auto", path=str(path), **kwargs, **extra)
    if isinstance(source, np.memmap) and source.filename and str(source.filename).endswith(".npy"):
        return _npy_dataset(ctx, Path(source.filename), source.shape[:2], extra)
    if type(source).__module__.startswith("dask."):
        return ctx.load("dask", source, sig_dims=2)
    return ctx.load("memory", data=np.asarray(source), sig_dims=2, **extra)


def _npy_dataset(ctx, path: Path, scan_shape, extra):
    kwargs = {"nav_shape": tuple(scan_shape)} if scan_shape else {}
    return ctx.load("npy", path=str(path), sig_dims=2, **kwargs, **extra)


def run_udf(ctx, dataset, udf, progress: Callable[[float], object] | None = None) -> dict:
    """Run a UDF, reporting the fraction of scan positions done after each partition.

    ``progress`` may raise :class:`~napari_emcal.errors.Cancelled`: the run stops there
    (the remaining partitions are not computed) and the exception propagates.
    """
    if progress is None:
        return ctx.run_udf(dataset, udf)
    results = None
    iterator = ctx.run_udf_iter(dataset, udf)
    try:
        for part in iterator:
            results = part.buffers[0]
            damage = np.asarray(part.damage.data)
            progress(float(damage.sum()) / max(damage.size, 1))
    finally:
        iterator.close()
    return results
