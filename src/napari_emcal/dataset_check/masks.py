"""Detector masks for virtual apertures: disk, annulus, polygon and ellipse.

Coordinates are detector pixels (y, x), pixel centres at integers, as everywhere in the
project. A pixel belongs to a mask when its centre lies inside the shape.
"""

from __future__ import annotations

import numpy as np
from skimage.draw import polygon2mask

from ..errors import InvalidParameterError

__all__ = ["annulus", "beam_masks", "disk", "ellipse", "mask_from_shape", "polygon"]


def _grid(shape):
    ny, nx = (int(n) for n in shape)
    if ny <= 0 or nx <= 0:
        raise InvalidParameterError(f"detector shape must be positive; got {shape}")
    return np.mgrid[:ny, :nx]


def disk(shape, centre, radius: float) -> np.ndarray:
    """Pixels within ``radius`` of ``centre`` (a bright-field aperture)."""
    if not radius > 0:
        raise InvalidParameterError(f"aperture radius must be positive; got {radius}")
    yy, xx = _grid(shape)
    return np.hypot(yy - centre[0], xx - centre[1]) <= radius


def annulus(shape, centre, inner: float, outer: float) -> np.ndarray:
    """Pixels between ``inner`` and ``outer`` radius (an annular dark-field detector)."""
    if not 0 <= inner < outer:
        raise InvalidParameterError(
            f"annulus radii must satisfy 0 <= inner < outer; got {inner}, {outer}"
        )
    yy, xx = _grid(shape)
    distance = np.hypot(yy - centre[0], xx - centre[1])
    return (distance >= inner) & (distance <= outer)


def polygon(shape, vertices) -> np.ndarray:
    """Pixels inside a polygon given by its (y, x) vertices."""
    vertices = np.asarray(vertices, float)
    if vertices.ndim != 2 or vertices.shape[1] != 2 or len(vertices) < 3:
        raise InvalidParameterError("a polygon needs three or more (y, x) vertices")
    return polygon2mask(tuple(int(n) for n in shape), vertices)


def ellipse(shape, vertices) -> np.ndarray:
    """Pixels inside the ellipse inscribed in a (possibly rotated) rectangle, given by its
    four corners in order, as napari's Shapes layer stores an ellipse."""
    corners = np.asarray(vertices, float)
    if corners.shape != (4, 2):
        raise InvalidParameterError("an ellipse is given by the 4 corners of its box")
    centre = corners.mean(axis=0)
    edge_a, edge_b = corners[1] - corners[0], corners[2] - corners[1]
    half_a, half_b = np.hypot(*edge_a) / 2, np.hypot(*edge_b) / 2
    if half_a == 0 or half_b == 0:
        raise InvalidParameterError("the ellipse has zero width")
    yy, xx = _grid(shape)
    offset = np.stack([yy - centre[0], xx - centre[1]], axis=-1)
    u = offset @ (edge_a / (2 * half_a)) / half_a
    v = offset @ (edge_b / (2 * half_b)) / half_b
    return u**2 + v**2 <= 1


def mask_from_shape(shape, kind: str, vertices) -> np.ndarray:
    """The mask of a napari shape (``"ellipse"``, ``"polygon"`` or ``"rectangle"``)."""
    if kind == "ellipse":
        return ellipse(shape, vertices)
    if kind in ("polygon", "rectangle"):
        return polygon(shape, vertices)
    raise InvalidParameterError(
        f"a {kind} cannot be an aperture: draw an ellipse, polygon or rectangle"
    )


def beam_masks(shape, beam, adf_inner: float = 1.2, adf_outer: float = 0.0) -> dict:
    """The BF (the bright-field disk) and ADF masks of a beam.

    Parameters
    ----------
    shape : (int, int)
        Detector shape.
    beam : BeamDisk or None
        Anything with ``centre`` (y, x) and ``radius`` in detector pixels; None gives none.
    adf_inner, adf_outer : float
        ADF annulus radii in disk radii; an outer radius of 0 reaches the detector
        corners. No ADF mask when the annulus is empty.
    """
    if beam is None:
        return {}
    masks = {"BF": disk(shape, beam.centre, beam.radius)}
    outer = adf_outer * beam.radius if adf_outer else float(np.hypot(*shape))
    inner = adf_inner * beam.radius
    if outer > inner:
        masks["ADF"] = annulus(shape, beam.centre, inner, outer)
    return masks
