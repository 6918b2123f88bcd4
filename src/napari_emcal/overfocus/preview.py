"""Reduced copies of a 4D dataset for fast previews, with the twin adjusted to match.

Binning the detector by ``b`` (summing b x b pixels) makes a detector pixel ``b`` times
larger and moves the beam centre to ``(c − (b − 1)/2) / b``; taking every ``s``-th scan
position makes the scan step ``s`` times larger. The twin of the reduced data is then the
same instrument, so the preview shows the same specimen at a coarser sampling.
"""

from __future__ import annotations

import numpy as np

from ..errors import InvalidParameterError
from .twin import TwinParams

__all__ = ["reduce_data", "reduce_params"]


def _check_factor(name, value) -> int:
    if int(value) != value or value < 1:
        raise InvalidParameterError(f"{name} must be a whole number >= 1, got {value}.")
    return int(value)


def reduce_data(data, detector_bin: int = 1, scan_step: int = 1) -> np.ndarray:
    """Subsample the scan by ``scan_step`` and sum ``detector_bin`` x ``detector_bin`` pixels.

    Reads only the scan positions kept. Detector edges that do not fill a whole bin are
    dropped. Returns float32 in memory.
    """
    b = _check_factor("detector_bin", detector_bin)
    s = _check_factor("scan_step", scan_step)
    sub = data[::s, ::s]
    dy, dx = (sub.shape[2] // b) * b, (sub.shape[3] // b) * b
    if dy == 0 or dx == 0:
        raise InvalidParameterError(f"detector_bin={b} is larger than the detector {data.shape[2:]}.")
    sub = np.asarray(sub[:, :, :dy, :dx], dtype=np.float32)
    if b > 1:
        sub = sub.reshape(sub.shape[0], sub.shape[1], dy // b, b, dx // b, b).sum(axis=(3, 5))
    return sub


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
