"""One diffraction pattern from a stack or a 4D dataset: the mean or the maximum over every
frame, computed in one lazy pass (Dask, block by block: a file larger than memory is read
once and never held whole).

Pure computation.
"""

from __future__ import annotations

import numpy as np

from ..errors import InvalidDataError, InvalidParameterError

__all__ = ["REDUCTIONS", "reduce_frames"]

REDUCTIONS = ("mean", "max")


def reduce_frames(data, how: str = "mean") -> np.ndarray:
    """The mean (or maximum) pattern of ``data`` over all its leading axes.

    Parameters
    ----------
    data : array (NumPy or Dask), 2D to 4D
        A pattern, a stack ``(n, ny, nx)`` or a 4D dataset ``(scan_y, scan_x, ny, nx)``.
    how : {"mean", "max"}
        The mean keeps the rings' shapes (the usual choice); the maximum brings out weak
        rings of a few large grains, at the cost of the noise's extremes.

    Returns
    -------
    ndarray of float64, (ny, nx)
    """
    import dask.array as da

    if how not in REDUCTIONS:
        raise InvalidParameterError(f"reduction must be one of {REDUCTIONS}, not {how!r}")
    ndim = np.ndim(data)
    if ndim == 2:
        return np.asarray(data, dtype=np.float64)
    if ndim not in (3, 4):
        raise InvalidDataError(f"expected a 2D pattern, a stack or 4D data; got {ndim}D")
    lazy = data if isinstance(data, da.Array) else da.from_array(data)
    axes = tuple(range(ndim - 2))
    if how == "mean":
        reduced = lazy.astype(np.float64).mean(axis=axes)
    else:
        reduced = lazy.max(axis=axes).astype(np.float64)
    return np.asarray(reduced.compute())
