"""Simulated near-focus / high-defocus image pairs with a known magnification and rotation.

Pure computation (numpy/scipy): the sample data, the tests and the benchmark use these
pairs as ground truth for :func:`napari_emcal.highdefocus.measure`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..errors import InvalidParameterError
from ..geometry import similarity
from ..specimens import detailed_specimen, grating_specimen

__all__ = ["DefocusPair", "defocus_pair"]


@dataclass(frozen=True)
class DefocusPair:
    """A simulated pair and its truth.

    Attributes
    ----------
    near, far : ndarray of uint16 (Poisson counts) or float64 (noise-free)
        The near-focus image and the defocused one.
    scale, rotation_deg : float
        The true magnification and rotation of ``far`` relative to ``near``.
    matrix, offset : ndarray
        The true mapping of near-focus pixels ``p = (y, x)`` to defocused pixels:
        ``q = matrix @ p + offset``.
    landmarks : ndarray (n, 2)
        Near-focus positions of the large dark particles, easy to find in both images.
    """

    near: np.ndarray
    far: np.ndarray
    scale: float
    rotation_deg: float
    matrix: np.ndarray
    offset: np.ndarray
    landmarks: np.ndarray

    def near_to_far(self, points) -> np.ndarray:
        """Defocused-image positions of near-focus points ``(..., 2)`` (y, x)."""
        return np.asarray(points, float) @ self.matrix.T + self.offset


def defocus_pair(
    shape: tuple[int, int] = (1024, 1024),
    *,
    scale: float = 1.1,
    rotation_deg: float = 5.0,
    shift: tuple[float, float] = (0.0, 0.0),
    far_shape: tuple[int, int] | None = None,
    specimen: str = "detailed",
    feature_size: float = 2.0,
    period_px: float = 24.0,
    landmarks: int = 24,
    blur_px: float = 2.0,
    dose_near: float | None = 400.0,
    dose_far: float | None = 100.0,
    seed: int | None = 0,
) -> DefocusPair:
    """A near-focus image and a defocused one: magnified, rotated, shifted, blurred, noisier.

    The defocused image pixel ``q`` shows the specimen point seen at near-focus pixel
    ``p`` with ``q = c_far + shift + scale · R(rotation) · (p - c_near)``, ``c`` the image
    centres, so the field of view overlaps only partly when ``shift`` is large.

    Parameters
    ----------
    shape : (ny, nx)
        Near-focus image shape.
    scale : float
        Magnification of the defocused image relative to near focus (> 1: larger).
    rotation_deg : float
        Rotation of the defocused image, degrees from +x towards +y.
    shift : (dy, dx)
        Extra displacement of the defocused image, in its pixels.
    far_shape : (ny, nx), optional
        Defocused image shape (default ``shape``).
    specimen : {"detailed", "grating", "lattice"}
        ``"detailed"``: non-periodic texture of ``feature_size``; ``"grating"``: a cross
        grating of ``period_px``; ``"lattice"``: the same grating without texture, so the
        only non-periodic detail is the landmarks (0 landmarks: perfectly periodic).
    landmarks : int
        Number of large dark round particles (radius 6-16 px) added at random.
    blur_px : float
        Gaussian blur of the defocused image (standard deviation in its pixels).
    dose_near, dose_far : float or None
        Mean electrons per pixel of each image (Poisson noise), None for noise-free.
    seed : int, optional
    """
    if not (np.isfinite(scale) and scale > 0):
        raise InvalidParameterError(f"scale must be positive; got {scale}")
    if specimen not in ("detailed", "grating", "lattice"):
        raise InvalidParameterError(
            f"specimen must be detailed, grating or lattice; got {specimen!r}"
        )
    rng = np.random.default_rng(seed)
    shape = tuple(int(n) for n in shape)
    far_shape = shape if far_shape is None else tuple(int(n) for n in far_shape)
    matrix = similarity(scale, rotation_deg)
    c_near = (np.asarray(shape, float) - 1) / 2
    c_far = (np.asarray(far_shape, float) - 1) / 2
    offset = c_far + np.asarray(shift, float) - matrix @ c_near

    # The specimen on a near-focus pixel grid large enough for both fields of view.
    corners = np.array(
        [
            [0, 0],
            [0, far_shape[1] - 1],
            [far_shape[0] - 1, 0],
            [far_shape[0] - 1, far_shape[1] - 1],
        ],
        float,
    )
    far_in_near = (corners - offset) @ np.linalg.inv(matrix).T
    low = np.floor(np.minimum(far_in_near.min(axis=0), 0)) - 8
    high = np.ceil(np.maximum(far_in_near.max(axis=0), np.asarray(shape) - 1)) + 8
    field_shape = tuple(int(n) for n in high - low + 1)
    field_seed = int(rng.integers(2**31))
    if specimen == "detailed":
        field = detailed_specimen(field_shape, feature_size=feature_size, seed=field_seed)
    else:
        field = grating_specimen(
            field_shape,
            period=period_px,
            line_width=period_px / 4,
            angle_deg=float(rng.uniform(0, 90)),
            particles=0,
            seed=field_seed,
        )
        if specimen == "grating":  # lattice plus faint texture: still strongly periodic
            field = field * (
                0.85
                + 0.15
                * detailed_specimen(field_shape, feature_size=feature_size, seed=field_seed + 1)
            )
    positions = rng.uniform([0, 0], np.asarray(shape) - 1, size=(landmarks, 2))
    _add_particles(field, positions - low, rng.uniform(6.0, 16.0, size=landmarks))

    near = field[int(-low[0]) : int(-low[0]) + shape[0], int(-low[1]) : int(-low[1]) + shape[1]]
    qy, qx = np.mgrid[: far_shape[0], : far_shape[1]].astype(float)
    p = np.stack([qy - offset[0], qx - offset[1]])
    p = np.tensordot(np.linalg.inv(matrix), p, axes=1) - low[:, None, None]
    far = ndimage.map_coordinates(field, p, order=3, mode="nearest")
    if blur_px > 0:
        far = ndimage.gaussian_filter(far, blur_px)
    return DefocusPair(
        near=_counts(near, dose_near, rng),
        far=_counts(far, dose_far, rng),
        scale=float(scale),
        rotation_deg=float(rotation_deg),
        matrix=matrix,
        offset=offset,
        landmarks=positions,
    )


def _add_particles(field: np.ndarray, positions: np.ndarray, radii: np.ndarray) -> None:
    """Multiply in dark round particles with soft edges (in place, drawn locally)."""
    for (cy, cx), r in zip(positions, radii):
        y0, y1 = int(max(cy - r - 4, 0)), int(min(cy + r + 5, field.shape[0]))
        x0, x1 = int(max(cx - r - 4, 0)), int(min(cx + r + 5, field.shape[1]))
        yy, xx = np.mgrid[y0:y1, x0:x1]
        distance = np.hypot(yy - cy, xx - cx)
        field[y0:y1, x0:x1] *= 1 - 0.7 / (1 + np.exp((distance - r) * 1.5))


def _counts(image: np.ndarray, dose: float | None, rng) -> np.ndarray:
    if dose is None:
        return image
    return rng.poisson(np.clip(image, 0, None) * dose).astype(np.uint16)
