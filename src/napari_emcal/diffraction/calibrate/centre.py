"""Steps 1-2 of the calibration: the checked image, the masks (saturated pixels, a beam
stop's shadow), the centre of point symmetry, and the radii between which rings are
sought (outside the central beam, inside the detector)."""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from ...errors import InvalidDataError


def _check_image(image) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 2:
        raise InvalidDataError(f"a diffraction pattern must be 2D; got shape {image.shape}")
    if min(image.shape) < 64:
        raise InvalidDataError(f"pattern {image.shape} is too small (at least 64 x 64)")
    if image.dtype.kind not in "iuf":
        raise InvalidDataError(f"pattern of type {image.dtype} is not numeric")
    return image.astype(np.float64)


def _saturation_mask(image: np.ndarray, valid: np.ndarray, saturation: float | None):
    """Pixels at the detector's saturation (given, or the maximum when many pixels share
    it), grown by two pixels."""
    top = float(image[valid].max())
    level = saturation
    if level is None:
        at_top = np.count_nonzero(image[valid] >= top)
        if at_top >= 5 and top > 0:
            level = top
    if level is None:
        return np.zeros(image.shape, bool)
    return ndimage.binary_dilation(image >= level, iterations=2) & valid


def _point_symmetry_centre(image, mask) -> tuple[float, float]:
    """Centre of point symmetry: the peak of the band-passed image convolved with itself,
    at twice the centre."""
    ny, nx = image.shape
    filled = np.where(mask, image, 0.0)
    weight = ndimage.gaussian_filter(mask.astype(float), 4) + 1e-9
    smooth = ndimage.gaussian_filter(filled, 4) / weight
    fine = ndimage.gaussian_filter(filled, 1) / (
        ndimage.gaussian_filter(mask.astype(float), 1) + 1e-9
    )
    band = np.where(ndimage.binary_erosion(mask, iterations=5), fine - smooth, 0.0)
    # the strongest features (the central beam's edge) would dominate: compress them
    scale = np.percentile(np.abs(band[mask]), 99.5) + 1e-12
    band = np.tanh(band / scale)
    size = (2 * ny, 2 * nx)
    spectrum = np.fft.rfft2(band, size)
    conv = np.fft.irfft2(spectrum * spectrum, size)
    # only centres inside the detector
    conv[ny * 2 - 1 :, :] = -np.inf
    conv[:, nx * 2 - 1 :] = -np.inf
    py, px = np.unravel_index(np.argmax(conv), conv.shape)

    def vertex(m, c, p):
        if m == -np.inf or p == -np.inf:
            return 0.0
        denom = m - 2 * c + p
        return 0.5 * (m - p) / denom if denom < 0 else 0.0

    c = conv[py, px]
    oy = vertex(conv[py - 1, px], c, conv[(py + 1) % size[0], px])
    ox = vertex(conv[py, px - 1], c, conv[py, (px + 1) % size[1]])
    return (py + oy) / 2.0, (px + ox) / 2.0


def _beam_stop(image, good, yy, xx, centre):
    """Pixels much darker than the azimuthal median at their radius (a beam stop's shadow),
    grown by three pixels."""
    r = np.hypot(yy - centre[0], xx - centre[1])
    smooth = ndimage.gaussian_filter(np.where(good, image, 0), 2) / (
        ndimage.gaussian_filter(good.astype(float), 2) + 1e-9
    )
    rbin = r.astype(int)
    nb = rbin.max() + 1
    order = np.argsort(rbin[good], kind="stable")
    vals = smooth[good][order]
    bins = rbin[good][order]
    edges = np.searchsorted(bins, np.arange(nb + 1))
    median = np.zeros(nb)
    for b in range(nb):
        seg = vals[edges[b] : edges[b + 1]]
        median[b] = np.median(seg) if len(seg) else 0.0
    dark = good & (smooth < 0.25 * median[rbin]) & (median[rbin] > 0)
    # only a connected shadow of some size counts
    labels, count = ndimage.label(dark)
    if count == 0:
        return np.zeros_like(good)
    sizes = ndimage.sum(dark, labels, index=np.arange(1, count + 1))
    big = np.isin(labels, 1 + np.flatnonzero(sizes >= 30))
    return ndimage.binary_dilation(big, iterations=3)


def _inner_radius(rho, valid, saturated, image, good):
    """The radius inside which the central beam (saturated or not) dominates."""
    r_sat = float(rho[saturated].max()) if saturated.any() else 0.0
    # the unscattered beam: where the pattern is above half its maximum near the centre
    near = rho < 0.1 * rho.max()
    r_beam = 0.0
    if near.any():
        inner = image[near & good]
        if inner.size:
            top = np.percentile(inner, 99.9)
            bright = near & good & (image > 0.5 * top)
            if bright.any():
                r_beam = float(rho[bright].max())
    return max(r_sat, r_beam, 3.0) * 1.5 + 4


def _outer_radius(rho, good):
    """The largest radius at which at least half the circle lies on valid pixels."""
    rbin = rho[good].astype(int)
    counts = np.bincount(rbin)
    circle = 2 * math.pi * (np.arange(len(counts)) + 0.5)
    ok = counts >= 0.5 * circle
    last = np.flatnonzero(ok)
    return float(last[-1]) if len(last) else float(rho.max())
