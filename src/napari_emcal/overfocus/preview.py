"""Reduced copies of a 4D dataset for fast previews, with the twin adjusted to match.

The reduction itself is the engine's :func:`~napari_emcal.engine.reduce_data`; this module
adds the twin of the reduced data.

Binning the detector by ``b`` (summing b x b pixels) makes a detector pixel ``b`` times
larger and moves the beam centre to ``(c − (b − 1)/2) / b``; taking every ``s``-th scan
position (the scan stride) makes the scan step ``s`` times larger. The twin of the reduced
data is then the same instrument, so the preview shows the same specimen at a coarser sampling.
"""

from __future__ import annotations

from ..engine.blocks import check_factor, reduce_data
from ..errors import InvalidParameterError
from .twin import TwinParams

__all__ = ["reduce_data", "reduce_params", "reduce_positions"]


def reduce_params(
    params: TwinParams, detector_bin: int = 1, scan_stride: int = 1, scan_shape=None
) -> TwinParams:
    """The twin of :func:`reduce_data`'s output.

    A descan becomes ``D · s / b`` (reduced detector px per reduced scan step), and the
    beam centre moves to where the beam is at the reduced scan's centre (which is not the
    full scan's when the stride does not divide it): ``scan_shape``, the full data's, is
    needed for that when the twin has a descan.
    """
    b = check_factor("detector_bin", detector_bin)
    s = check_factor("scan_stride", scan_stride)
    centre = params.centre
    descan = params.descan_matrix
    if params.has_descan:
        if scan_shape is None:
            raise InvalidParameterError(
                "this twin has a descan: give the full data's scan_shape to reduce it"
            )
        reduced = [-(-int(n) // s) for n in scan_shape[:2]]
        at = [s * (n - 1) / 2 for n in reduced]  # the reduced centre in full scan px
        centre = params.centre_at(at, scan_shape[:2])
    return params.replace(
        detector_pixel_size=params.detector_pixel_size * b,
        cy=(centre[0] - (b - 1) / 2) / b,
        cx=(centre[1] - (b - 1) / 2) / b,
        scan_pixel_size=params.scan_pixel_size * s,
        descan=descan * s / b,
    )


def reduce_positions(select, point, detector_bin: int, scan_stride: int, reduced_shape):
    """The ``select`` scan position and ``point`` detector pixel of the full data in the
    reduced data of shape ``reduced_shape`` (None stays None: the default is used)."""
    sy, sx, dy, dx = reduced_shape
    if select is not None:
        select = (min(select[0] // scan_stride, sy - 1), min(select[1] // scan_stride, sx - 1))
    if point is not None:
        point = (min(point[0] // detector_bin, dy - 1), min(point[1] // detector_bin, dx - 1))
    return select, point
