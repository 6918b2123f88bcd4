"""Synthetic specimens with known structure, for simulations, tests and sample data, and the
sample datasets' recipes (``sample_data/``)."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import numpy as np
from scipy import ndimage

__all__ = [
    "detailed_specimen",
    "grating_specimen",
    "lattice_specimen",
    "multiscale_specimen",
    "particle_specimen",
    "sample_recipe",
    "sparse_point_specimen",
]


def detailed_specimen(shape, *, feature_size: float = 2.0, seed: int | None = 0) -> np.ndarray:
    """A non-periodic specimen with detail at all angles: smoothed random texture.

    Parameters
    ----------
    shape : (int, int)
    feature_size : float
        Gaussian smoothing sigma in pixels: the typical size of the structures.
    seed : int, optional

    Returns
    -------
    ndarray of float64 in [0.2, 1.0]
        A transmission image.
    """
    rng = np.random.default_rng(seed)
    noise = ndimage.gaussian_filter(rng.standard_normal(shape), feature_size)
    noise -= noise.min()
    noise /= max(noise.max(), 1e-12)
    return 0.2 + 0.8 * noise


def multiscale_specimen(shape, *, feature_sizes=(2.0, 24.0), seed: int | None = 0) -> np.ndarray:
    """A specimen with structure at several scales: the product of detailed textures.

    Real specimens have detail finer than a scan step beside structures spanning many;
    the large ones make the mean frame show the specimen's shadow and the local mean
    vary over the scan, which a method must not mistake for geometry.

    Parameters
    ----------
    shape : (int, int)
    feature_sizes : sequence of float
        Smoothing sigmas in pixels, one texture each.
    seed : int, optional

    Returns
    -------
    ndarray of float64 in [0.2**n, 1.0]
    """
    rng = np.random.default_rng(seed)
    out = np.ones(shape)
    for size in feature_sizes:
        out *= detailed_specimen(shape, feature_size=size, seed=int(rng.integers(2**31)))
    return out


def grating_specimen(
    shape,
    *,
    period: float = 12.0,
    line_width: float = 3.0,
    angle_deg: float = 0.0,
    particles: int = 40,
    seed: int | None = 0,
) -> np.ndarray:
    """A cross-line grating replica with a few gold-like particles on it.

    The lines are dark (carbon replica lines), the squares between them bright; the
    particles break the periodicity so the image has a unique registration.

    Parameters
    ----------
    shape : (int, int)
    period : float
        Grating period in pixels.
    line_width : float
        Width of the lines in pixels.
    angle_deg : float
        Rotation of the grating (degrees, counter-clockwise in the displayed image).
    particles : int
        Number of dark round particles of random size placed at random.
    seed : int, optional
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]].astype(float)
    a = np.deg2rad(angle_deg)
    u = np.cos(a) * xx - np.sin(a) * yy
    v = np.sin(a) * xx + np.cos(a) * yy

    def line_profile(coord):
        # distance to the nearest line centre, smooth edge of ~1 px
        d = np.abs((coord / period + 0.5) % 1.0 - 0.5) * period
        return 1.0 / (1.0 + np.exp(-(d - line_width / 2) * 2.0))

    image = 0.35 + 0.65 * line_profile(u) * line_profile(v)
    for _ in range(particles):
        cy, cx = rng.uniform(0, shape[0]), rng.uniform(0, shape[1])
        r = rng.uniform(1.5, 4.0)
        dist = np.hypot(yy - cy, xx - cx)
        image *= 1 - 0.6 / (1 + np.exp((dist - r) * 2.0))
    return ndimage.gaussian_filter(image, 0.6)


def particle_specimen(
    shape,
    *,
    diameter=(20.0, 30.0),
    coverage: float = 0.3,
    edge: float = 2.0,
    contrast=(0.3, 0.6),
    seed: int | None = 0,
) -> np.ndarray:
    """Large smooth particles on a uniform support: little detail finer than a particle.

    Round and oval particles of random size, orientation, position and darkness, each with
    a soft edge and a smooth, dome-like thickness (darkest at the centre). Their only
    sharp detail is the edge; inside and between them the image is flat. A hard case for
    a method that locates shifts by fine detail.

    Parameters
    ----------
    shape : (int, int)
    diameter : (float, float)
        Range of the particles' mean diameters in pixels.
    coverage : float
        Share of the area the particles cover (overlaps counted twice).
    edge : float
        Width of the particles' soft edge in pixels (logistic scale).
    contrast : (float, float)
        Range of the transmission lost at a particle's centre.
    seed : int, optional

    Returns
    -------
    ndarray of float64 in (0, 1]
        A transmission image.
    """
    rng = np.random.default_rng(seed)
    shape = tuple(int(v) for v in shape)
    low, high = float(diameter[0]), float(diameter[1])
    mean_area = np.pi / 4 * (low**2 + low * high + high**2) / 3
    count = max(1, round(coverage * shape[0] * shape[1] / mean_area))
    thickness = np.zeros(shape)
    for _ in range(count):
        d = rng.uniform(low, high)
        aspect = rng.uniform(0.7, 1.0)
        a, b = d / 2 / np.sqrt(aspect), d / 2 * np.sqrt(aspect)  # semi-axes, same area
        angle = rng.uniform(0, np.pi)
        cy, cx = rng.uniform(0, shape[0]), rng.uniform(0, shape[1])
        r = int(np.ceil(a + 4 * edge))
        y0, y1 = max(0, int(cy) - r), min(shape[0], int(cy) + r + 1)
        x0, x1 = max(0, int(cx) - r), min(shape[1], int(cx) + r + 1)
        if y0 >= y1 or x0 >= x1:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(float)
        u = np.cos(angle) * (yy - cy) + np.sin(angle) * (xx - cx)
        v = -np.sin(angle) * (yy - cy) + np.cos(angle) * (xx - cx)
        rho = np.hypot(u / a, v / b)  # 1 on the particle's outline
        dome = np.sqrt(np.clip(1 - np.minimum(rho, 1) ** 2, 0, None))
        rim = 1 / (1 + np.exp(np.clip((rho - 1) * d / 2 / edge, -50, 50)))
        thickness[y0:y1, x0:x1] += rng.uniform(*contrast) * (0.5 + 0.5 * dome) * rim
    return np.exp(-thickness)


def lattice_specimen(
    shape,
    *,
    period: float = 8.0,
    angle_deg: float = 17.0,
    blob: float = 1.5,
    contrast: float = 0.5,
    seed: int | None = None,
) -> np.ndarray:
    """A perfect periodic crystal: round atoms-like columns on a square lattice.

    Shifts between two images of it are known only up to a lattice vector: a method must
    either resolve that ambiguity from something other than the lattice or refuse.

    Parameters
    ----------
    shape : (int, int)
    period : float
        Lattice period in pixels.
    angle_deg : float
        Rotation of the lattice (degrees).
    blob : float
        Gaussian sigma of each column in pixels.
    contrast : float
        Transmission lost at a column's centre.
    seed : int, optional
        When given, a random sub-period offset of the lattice.

    Returns
    -------
    ndarray of float64 in [1 − contrast, 1]
    """
    rng = np.random.default_rng(seed)
    offset = rng.uniform(0, period, 2) if seed is not None else np.zeros(2)
    yy, xx = np.mgrid[: shape[0], : shape[1]].astype(float)
    a = np.deg2rad(angle_deg)
    u = np.cos(a) * (yy - offset[0]) + np.sin(a) * (xx - offset[1])
    v = -np.sin(a) * (yy - offset[0]) + np.cos(a) * (xx - offset[1])
    du = (u / period + 0.5) % 1.0 - 0.5
    dv = (v / period + 0.5) % 1.0 - 0.5
    column = np.exp(-((du**2 + dv**2) * period**2) / (2 * blob**2))
    return 1.0 - contrast * column


def sparse_point_specimen(
    shape,
    *,
    count: int = 40,
    size: float = 1.5,
    contrast=(0.4, 0.8),
    seed: int | None = 0,
) -> np.ndarray:
    """A few small dark points (gold clusters, say) on a uniform support.

    Parameters
    ----------
    shape : (int, int)
    count : int
        Number of points.
    size : float
        Gaussian sigma of each point in pixels.
    contrast : (float, float)
        Range of the transmission lost at a point's centre.
    seed : int, optional

    Returns
    -------
    ndarray of float64 in (0, 1]
    """
    rng = np.random.default_rng(seed)
    thickness = np.zeros(shape)
    centres = rng.uniform(0, 1, (count, 2)) * np.asarray(shape)
    peak = rng.uniform(*contrast, count)
    iy = np.clip(centres[:, 0].astype(int), 0, shape[0] - 1)
    ix = np.clip(centres[:, 1].astype(int), 0, shape[1] - 1)
    np.add.at(thickness, (iy, ix), -np.log1p(-peak))
    thickness = ndimage.gaussian_filter(thickness, size) * 2 * np.pi * size**2
    return np.exp(-thickness)


def sample_recipe(name: str) -> dict[str, Any]:
    """The JSON recipe of a sample dataset (``sample_data/<name>.json``)."""
    path = resources.files("napari_emcal") / "sample_data" / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8"))
