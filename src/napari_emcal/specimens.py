"""Synthetic specimens with known structure, for simulations, tests and sample data, and the
sample datasets' recipes (``sample_data/``)."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import numpy as np
from scipy import ndimage

__all__ = ["detailed_specimen", "grating_specimen", "multiscale_specimen", "sample_recipe"]


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


def sample_recipe(name: str) -> dict[str, Any]:
    """The JSON recipe of a sample dataset (``sample_data/<name>.json``)."""
    path = resources.files("napari_emcal") / "sample_data" / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8"))
