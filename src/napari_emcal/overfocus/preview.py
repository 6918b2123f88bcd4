"""Reduced copies of a 4D dataset for fast previews, with the twin adjusted to match.

Binning the detector by ``b`` (summing b x b pixels) makes a detector pixel ``b`` times
larger and moves the beam centre to ``(c − (b − 1)/2) / b``; taking every ``s``-th scan
position makes the scan step ``s`` times larger. The twin of the reduced data is then the
same instrument, so the preview shows the same specimen at a coarser sampling.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..errors import InvalidParameterError
from .images import iter_blocks, validate_4d
from .twin import TwinParams

__all__ = ["reduce_data", "reduce_params"]


def _check_factor(name, value) -> int:
    if int(value) != value or value < 1:
        raise InvalidParameterError(f"{name} must be a whole number >= 1, got {value}.")
    return int(value)


def reduce_data(data, detector_bin: int = 1, scan_step: int = 1, *,
                progress: Callable[[float], object] | None = None) -> np.ndarray:
    """Subsample the scan by ``scan_step`` and sum ``detector_bin`` x ``detector_bin`` pixels.

    Reads only the scan positions kept, block by block (NumPy, memmap or Dask data).
    Detector edges that do not fill a whole bin are dropped.

    Parameters
    ----------
    progress : callable, optional
        Called with the fraction done (0..1] after each block; it may raise
        :class:`~napari_emcal.errors.Cancelled` to stop.

    Returns
    -------
    ndarray, float32, shape ``(ceil(sy / scan_step), ceil(sx / scan_step), dy // b, dx // b)``
    """
    b = _check_factor("detector_bin", detector_bin)
    s = _check_factor("scan_step", scan_step)
    (sy, sx), (dy, dx) = validate_4d(data)
    dy, dx = (dy // b) * b, (dx // b) * b
    if dy == 0 or dx == 0:
        raise InvalidParameterError(f"detector_bin={b} is larger than the detector {data.shape[2:]}.")
    sub = data[::s, ::s, :dy, :dx]
    out = np.empty(sub.shape[:2] + (dy // b, dx // b), np.float32)
    total = sub.shape[0] * sub.shape[1]
    done = 0
    for frames, yy, xx in iter_blocks(sub):
        frames = frames.astype(np.float32, copy=False)
        if b > 1:
            frames = frames.reshape(len(frames), dy // b, b, dx // b, b).sum(axis=(2, 4))
        out[yy, xx] = frames
        done += len(frames)
        if progress is not None:
            progress(done / total)
    return out


def reduce_params(params: TwinParams, detector_bin: int = 1, scan_step: int = 1) -> TwinParams:
    """The twin of :func:`reduce_data`'s output."""
    b = _check_factor("detector_bin", detector_bin)
    s = _check_factor("scan_step", scan_step)
    return params.replace(
        detector_pixel_size=params.detector_pixel_size * b,
        cy=(params.cy - (b - 1) / 2) / b,
        cx=(params.cx - (b - 1) / 2) / b,
        scan_pixel_size=params.scan_pixel_size * s,
    )
