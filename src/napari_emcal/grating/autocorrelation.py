"""The filtered, normalised autocorrelation of a periodic image, and peaks in it.

Pure computation (numpy/scipy). :func:`napari_emcal.grating.find_pixel_size` chains these
steps; they are separate so that each can be tested and reused on its own.

Why the autocorrelation is computed the way it is:

* A window (taper, and a mask over dark regions) multiplies the image, so every peak of
  the autocorrelation is multiplied by a smooth envelope that falls with the lag and would
  pull far peaks towards the centre. Dividing by that envelope (the autocorrelation of the
  window alone) removes the pull, and the far peaks, which carry the precision, are as
  high as the near ones.
* The power spectrum is high-passed (illumination gradients) and mildly low-passed (pixel
  noise). White noise adds a flat power level which, high-passed, would leave a broad
  negative dip around the centre, deep enough to swallow the nearest peaks of a fine,
  noisy lattice; that level is estimated from the median power and subtracted first.
* The image is zero-padded so that no lag that is used wraps around.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import fft, ndimage

__all__ = [
    "Autocorrelation",
    "bin_image",
    "bright_region",
    "estimate_period",
    "filtered_autocorrelation",
    "refine_peaks",
]

#: Lags whose envelope falls below this fraction of its value at zero lag are not used.
MIN_ENVELOPE = 0.2
#: Mean / median of white noise's power spectrum (exponentially distributed): 1 / ln 2.
NOISE_MEAN_PER_MEDIAN = 1 / np.log(2)


def bin_image(image: np.ndarray, factor: int) -> np.ndarray:
    """Mean of ``factor`` x ``factor`` blocks as float32 (the remainder rows are dropped)."""
    image = np.asarray(image, dtype=np.float32)
    if factor <= 1:
        return image
    ny, nx = (s // factor for s in image.shape)
    blocks = image[: ny * factor, : nx * factor].reshape(ny, factor, nx, factor)
    return blocks.mean(axis=(1, 3), dtype=np.float32)


def estimate_period(image: np.ndarray, max_size: int = 1024) -> float | None:
    """Rough period of the strongest periodicity, in pixels of ``image``, or None.

    From the strongest peak of the windowed amplitude spectrum of a copy binned to at most
    ``max_size`` pixels; the lowest frequencies (fewer than 2 repeats across the image,
    i.e. illumination gradients) are ignored. It may return a harmonic: it only chooses
    the working size.
    """
    factor = max(1, int(np.ceil(max(image.shape) / max_size)))
    small = bin_image(image, factor)
    ny, nx = small.shape
    window = np.outer(np.hanning(ny), np.hanning(nx)).astype(np.float32)
    small = (small - small.mean()) * window
    amplitude = np.abs(fft.rfft2(small, workers=-1))
    fy = fft.fftfreq(ny)[:, None]
    fx = fft.rfftfreq(nx)[None, :]
    frequency = np.hypot(fy, fx)  # cycles per pixel
    amplitude[frequency < 2.0 / min(ny, nx)] = 0
    if not np.any(amplitude > 0):
        return None
    peak = np.unravel_index(np.argmax(amplitude), amplitude.shape)
    return float(factor / frequency[peak])


def bright_region(image: np.ndarray, period_px: float | None):
    """Crop and weight that leave out dark regions (grid bars, beam edge) at the edges.

    Parameters
    ----------
    image : 2D array
    period_px : float or None
        Approximate lattice period: the image is smoothed over about one period, which
        averages the lattice itself away and leaves the illumination.

    Returns
    -------
    crop : tuple of slices
        The rows and columns to keep (all of them when nothing is dark).
    weight : ndarray of float32 or None
        A soft mask of the bright area within ``crop`` (0 in dark regions), or None when
        the cropped image is bright throughout.
    """
    ny, nx = image.shape
    sigma = max(2.0, period_px if period_px else max(ny, nx) / 32)
    step = max(1, int(sigma / 2))  # smooth a binned copy: same result, much faster
    coarse = bin_image(image, step)
    smooth = ndimage.gaussian_filter(coarse, sigma / step, mode="nearest")
    dark, typical = np.percentile(smooth, [0.5, 50])
    full = (slice(0, ny), slice(0, nx))
    if typical - dark <= 0.3 * abs(typical):
        return full, None
    bright = smooth > dark + 0.5 * (typical - dark)
    rows = np.flatnonzero(bright.mean(axis=1) >= 0.5)
    cols = np.flatnonzero(bright.mean(axis=0) >= 0.5)
    if rows.size == 0 or cols.size == 0:
        return full, None
    crop_coarse = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    crop = (
        slice(rows[0] * step, min(ny, (rows[-1] + 1) * step)),
        slice(cols[0] * step, min(nx, (cols[-1] + 1) * step)),
    )
    # a stricter threshold, softened: the transition into the dark region gets no weight
    inside = smooth[crop_coarse] > dark + 0.75 * (typical - dark)
    if inside.mean() > 0.99:
        return crop, None
    soft = ndimage.gaussian_filter(inside.astype(np.float32), max(1.0, sigma / step / 2))
    weight = np.kron(soft, np.ones((step, step), np.float32))
    shape = (crop[0].stop - crop[0].start, crop[1].stop - crop[1].start)
    weight = np.pad(weight, [(0, max(0, s - w)) for s, w in zip(shape, weight.shape)], mode="edge")[
        : shape[0], : shape[1]
    ]
    return crop, weight


def _taper(n: int, width: int) -> np.ndarray:
    """Flat window with cosine edges ``width`` pixels wide (a Tukey window)."""
    window = np.ones(n, np.float32)
    width = int(min(max(width, 1), n // 2))
    ramp = 0.5 * (1 - np.cos(np.pi * (np.arange(width) + 0.5) / width))
    window[:width] = ramp
    window[n - width :] = ramp[::-1]
    return window


@dataclass(frozen=True)
class Autocorrelation:
    """A normalised, filtered autocorrelation cropped around zero lag.

    ``image[origin[0] + dy, origin[1] + dx]`` is the value at lag ``(dy, dx)`` (in pixels of
    the image it was computed from), scaled so that zero lag is 1. ``valid`` marks the lags
    whose envelope was large enough to be used; elsewhere ``image`` is 0.
    """

    image: np.ndarray
    valid: np.ndarray
    envelope: np.ndarray  # relative to zero lag: the weight of each lag's information
    origin: tuple[int, int]

    def inside(self, lags: np.ndarray, margin: int = 2) -> np.ndarray:
        """Whether lags (n, 2) fall on valid pixels at least ``margin`` from the border."""
        index = np.rint(np.asarray(lags) + self.origin).astype(int)
        shape = np.array(self.image.shape)
        ok = np.all((index >= margin) & (index < shape - margin), axis=-1)
        out = np.zeros(ok.shape, bool)
        out[ok] = self.valid[index[ok, 0], index[ok, 1]]
        return out


def filtered_autocorrelation(
    image: np.ndarray,
    weight: np.ndarray | None = None,
    *,
    period_px: float | None = None,
    max_lag_fraction: float = 0.5,
) -> Autocorrelation:
    """High-pass filtered autocorrelation of ``image``, divided by its window's envelope.

    Parameters
    ----------
    image : 2D array
        The (binned, cropped) image.
    weight : 2D array or None
        Soft mask of the usable area (from :func:`bright_region`), or None for all of it.
    period_px : float or None
        Approximate lattice period: sets the high-pass cut-off (well below the lattice's
        fundamental frequency).
    max_lag_fraction : float
        Largest lag kept, as a fraction of the image size along each axis (the image is
        padded by that much, so nothing wraps).
    """
    image = np.asarray(image, dtype=np.float32)
    ny, nx = image.shape
    taper_width = int(0.1 * min(ny, nx))  # narrow: few-repeat images keep their far lags
    wy, wx = _taper(ny, taper_width), _taper(nx, taper_width)
    window = np.outer(wy, wx)
    if weight is not None:
        window *= weight
    total = float(window.sum())
    centred = (image - float((image * window).sum()) / total) * window

    lag_y, lag_x = int(max_lag_fraction * ny), int(max_lag_fraction * nx)
    shape = (
        fft.next_fast_len(ny + lag_y + 1, real=True),
        fft.next_fast_len(nx + lag_x + 1, real=True),
    )
    spectrum = np.abs(fft.rfft2(centred, s=shape, workers=-1)) ** 2
    fy = fft.fftfreq(shape[0]).astype(np.float32)[:, None]
    fx = fft.rfftfreq(shape[1]).astype(np.float32)[None, :]
    f2 = fy**2 + fx**2
    cutoff = 0.25 / period_px if period_px else 2.0 / min(ny, nx)
    # the noise level: most frequencies of a lattice image hold noise only
    spectrum -= NOISE_MEAN_PER_MEDIAN * float(np.median(spectrum))
    # high-pass: removes the broad central hump; mild low-pass: pixel noise
    spectrum *= (1 - np.exp(-f2 / (2 * cutoff**2))) * np.exp(-f2 / (2 * 0.25**2))
    full = fft.irfft2(spectrum, s=shape, workers=-1)

    index_y = np.arange(-lag_y, lag_y + 1) % shape[0]
    index_x = np.arange(-lag_x, lag_x + 1) % shape[1]
    acf = full[np.ix_(index_y, index_x)]
    if weight is None:  # separable window: its envelope is the product of two 1D ones
        ey = fft.ifft(np.abs(fft.fft(wy, shape[0])) ** 2).real[index_y]
        ex = fft.ifft(np.abs(fft.fft(wx, shape[1])) ** 2).real[index_x]
        envelope = np.outer(ey / ey[lag_y], ex / ex[lag_x])
    else:
        envelope = fft.irfft2(
            np.abs(fft.rfft2(window, s=shape, workers=-1)) ** 2, s=shape, workers=-1
        )[np.ix_(index_y, index_x)]
        envelope = envelope / envelope[lag_y, lag_x]
    valid = envelope >= MIN_ENVELOPE
    normalised = np.zeros(acf.shape, np.float32)
    normalised[valid] = acf[valid] / envelope[valid]
    # 1 at zero lag (its largest value), unless noise subtraction left nothing there
    normalised /= max(float(acf[lag_y, lag_x]), float(np.abs(acf).max()) * 1e-3, 1e-30)
    return Autocorrelation(
        image=normalised,
        valid=valid,
        envelope=np.where(valid, envelope, 0).astype(np.float32),
        origin=(lag_y, lag_x),
    )


def refine_peaks(acf: Autocorrelation, lags: np.ndarray, radius: float):
    """Strongest pixel within ``radius`` of each lag, refined to sub-pixel precision.

    Parameters
    ----------
    acf : Autocorrelation
    lags : array (n, 2)
        Predicted lags (y, x) in pixels of the autocorrelation.
    radius : float
        Search radius (pixels) around each prediction.

    Returns
    -------
    positions : ndarray (n, 2)
        Sub-pixel lag of each peak (a Gaussian fitted through 3 points along each axis).
    heights : ndarray (n,)
        Value at the peak's pixel; -inf where the search window leaves the valid region.
    """
    lags = np.atleast_2d(np.asarray(lags, dtype=float))
    r = max(1, int(np.ceil(radius)))
    offsets = np.arange(-r, r + 1)
    dy, dx = np.meshgrid(offsets, offsets, indexing="ij")
    disk = (dy**2 + dx**2) <= radius**2 + 0.5
    dy, dx = dy[disk], dx[disk]
    centre = np.rint(lags).astype(int) + np.array(acf.origin)
    shape = np.array(acf.image.shape)
    ok = np.all((centre - r - 1 >= 0) & (centre + r + 1 < shape), axis=1)
    positions = np.full(lags.shape, np.nan)
    heights = np.full(len(lags), -np.inf)
    if not ok.any():
        return positions, heights
    cy = centre[ok, 0:1] + dy[None, :]
    cx = centre[ok, 1:2] + dx[None, :]
    values = np.where(acf.valid[cy, cx], acf.image[cy, cx], -np.inf)
    best = np.argmax(values, axis=1)
    py = cy[np.arange(len(best)), best]
    px = cx[np.arange(len(best)), best]
    peak = acf.image[py, px]
    inner = np.all(acf.valid[py[:, None] + np.array([-1, 1]), px[:, None]], axis=1) & np.all(
        acf.valid[py[:, None], px[:, None] + np.array([-1, 1])], axis=1
    )
    sub = np.stack(
        [
            _vertex(acf.image[py - 1, px], peak, acf.image[py + 1, px]),
            _vertex(acf.image[py, px - 1], peak, acf.image[py, px + 1]),
        ],
        axis=1,
    )
    found = np.stack([py, px], axis=1) + sub - np.array(acf.origin)
    heights_ok = np.where(inner & np.isfinite(values[np.arange(len(best)), best]), peak, -np.inf)
    positions[ok] = found
    heights[ok] = heights_ok
    return positions, heights


def _vertex(left: np.ndarray, centre: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Offset of the maximum of a Gaussian (or, for non-positive values, a parabola)."""
    positive = (left > 0) & (centre > 0) & (right > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        lo, c, r = (np.log(np.where(positive, v, 1.0)) for v in (left, centre, right))
        lo = np.where(positive, lo, left)
        c = np.where(positive, c, centre)
        r = np.where(positive, r, right)
        denominator = lo - 2 * c + r
        offset = np.where(denominator < 0, 0.5 * (lo - r) / denominator, 0.0)
    return np.clip(offset, -0.5, 0.5)
