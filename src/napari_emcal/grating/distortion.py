"""Magnification distortion (anisotropy) from a measured lattice.

A rectangular (or square) lattice of known periods ``a`` and ``b`` appears in the image as
two lattice vectors ``V = [v_a, v_b]`` (pixels). The image maps specimen nanometres to
pixels by some linear ``D`` with ``V = D T``, where ``T`` holds the true vectors. ``T``'s
rotation is unknown, but its columns are orthogonal, so ``TᵀT = diag(a², b²)`` and the
stretch part of the inverse map, ``P = sqrt(V⁻ᵀ diag(a², b²) V⁻¹)`` (nm per pixel, a
symmetric matrix acting on image pixels), is determined exactly: its eigenvalues are the
pixel sizes along the two principal axes, its eigenvectors the axes. The rotation of the
image, which the lattice cannot tell, is not part of it.

Stretching the image by ``P / sqrt(det P)`` makes it isotropic with the mean pixel size
``sqrt(det P)``: ``major`` (> 1) along the axis where one pixel covers the most specimen,
``minor`` (< 1) across it, ``major · minor = 1``. These are the three numbers
MotionCor2's ``-Mag`` option takes (after Grant & Grigorieff's ``mag_distortion_estimate``,
which gives the values that correct the distortion).

Angles are in degrees from the image's +x (column) axis towards +y (rows), in (-90, 90]:
clockwise as napari displays an image, counter-clockwise as IMOD and SerialEM display an
MRC file (first row at the bottom); the number is the same for the same array.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["MagnificationDistortion", "distortion_of_result", "magnification_distortion"]


@dataclass(frozen=True)
class MagnificationDistortion:
    """The stretch that makes an image isotropic.

    Attributes
    ----------
    major, minor : float
        Scale factors along the major axis and across it (``major · minor = 1``).
    angle_deg : float
        Direction of the major axis, degrees from +x towards +y (module docstring).
    pixel_size_nm : float
        Mean pixel size, ``sqrt`` of the product of the principal pixel sizes (nm).
    sigma : float or None
        Standard error of ``major`` and of ``minor`` (from the lattice's pixel-size error).
    """

    major: float
    minor: float
    angle_deg: float
    pixel_size_nm: float
    sigma: float | None = None

    @property
    def distortion_percent(self) -> float:
        """How much larger the pixel is along the major axis than across it (%)."""
        return 100.0 * (self.major / self.minor - 1.0)

    @property
    def significant(self) -> bool:
        """Whether the anisotropy is larger than three standard errors (else the axis is
        noise)."""
        # major - minor has twice the standard error of either
        return self.sigma is None or (self.major - self.minor) > 6 * self.sigma

    def motioncor2_argument(self) -> str:
        """``-Mag major minor angle`` for MotionCor2."""
        return f"-Mag {self.major:.5f} {self.minor:.5f} {self.angle_deg:.2f}"

    def to_dict(self) -> dict:
        return {
            "major": self.major,
            "minor": self.minor,
            "angle_deg": self.angle_deg,
            "pixel_size_nm": self.pixel_size_nm,
            "sigma": self.sigma,
            "distortion_percent": self.distortion_percent,
            "significant": self.significant,
            "motioncor2": self.motioncor2_argument(),
        }


def magnification_distortion(
    lattice_vectors, spacing_nm, relative_sigma: float | None = None
) -> MagnificationDistortion:
    """The distortion of an image from its two lattice vectors.

    Parameters
    ----------
    lattice_vectors : array (2, 2)
        The lattice vectors as rows ``(dy, dx)`` in image pixels, the first of period
        ``spacing_nm[0]``, the second of ``spacing_nm[1]``, at right angles on the specimen.
    spacing_nm : (float, float)
        The specimen's periods along them (nm).
    relative_sigma : float, optional
        Relative standard error of the mean pixel size, which is that of ``major`` and
        ``minor`` (each is about 1 ± half the relative difference of two periods, each
        known to √2 times the mean's error).
    """
    v = np.asarray(lattice_vectors, float).T  # columns (y, x)
    a, b = (float(s) for s in spacing_nm)
    inverse = np.linalg.inv(v)
    metric = inverse.T @ np.diag([a * a, b * b]) @ inverse  # PᵀP = P², nm² per px²
    values, vectors = np.linalg.eigh(metric)
    small, large = np.sqrt(values)
    mean = math.sqrt(small * large)
    vy, vx = vectors[:, 1]
    angle = math.degrees(math.atan2(vy, vx))
    if angle <= -90:
        angle += 180
    elif angle > 90:
        angle -= 180
    return MagnificationDistortion(
        major=float(large / mean),
        minor=float(small / mean),
        angle_deg=float(angle),
        pixel_size_nm=float(mean),
        sigma=None if relative_sigma is None else float(relative_sigma),
    )


def distortion_of_result(result: dict) -> MagnificationDistortion | None:
    """The distortion of a pixel-size result as :meth:`PixelSizeResult.to_dict` writes it
    (``lattice_vectors_px``, ``spacing_nm``, ``pixel_size_nm`` and its standard error), or
    None without a lattice. The standard error of ``major`` and ``minor`` is the mean
    pixel size's relative one."""
    vectors = result.get("lattice_vectors_px")
    if vectors is None:
        return None
    sigma, pixel = result.get("pixel_size_sigma_nm"), result.get("pixel_size_nm")
    relative = sigma / pixel if sigma and pixel else None
    return magnification_distortion(vectors, result["spacing_nm"], relative)
