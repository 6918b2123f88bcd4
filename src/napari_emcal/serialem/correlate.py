"""Cross-correlation of two images: the shift of one against the other, to 1/50 px.

A Tukey window, whose flat middle does not pull the peak towards zero; the cross-power
spectrum whitened and low-passed so that the peak is sharp; the few highest peaks, within
a radius of a predicted shift when one is given; the peak refined by an upsampled DFT
around it and measured again on the overlapping parts only. A peak's significance is its
height in noise levels of the correlation map (:func:`_noise`).

:mod:`napari_emcal.serialem.shifts` fits the matrices from these steps.

Pure NumPy/SciPy: no Qt, no napari.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..errors import CalibrationFailedError, InvalidDataError

__all__ = ["measure_shift"]

#: The Tukey window's tapered fraction at each edge.
_TAPER = 0.12
#: Candidate peaks kept per correlation for the consistency search.
_CANDIDATES = 6
#: Relative standard deviation below which an image holds no detail to correlate.
_BLANK_RELATIVE_STD = 1e-4


# ---------------------------------------------------------------------------------------
# one correlation


def _tukey(n: int) -> np.ndarray:
    x = np.arange(n) / max(n - 1, 1)
    w = np.ones(n)
    edge = x < _TAPER / 2
    w[edge] = 0.5 * (1 - np.cos(2 * np.pi * x[edge] / _TAPER))
    edge = x > 1 - _TAPER / 2
    w[edge] = 0.5 * (1 - np.cos(2 * np.pi * (1 - x[edge]) / _TAPER))
    return w


def _check_image(image, what: str) -> np.ndarray:
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 2 or min(image.shape) < 16:
        raise InvalidDataError(f"{what}: expected a 2D image of at least 16x16, got {image.shape}")
    if not np.isfinite(image).all():
        raise InvalidDataError(f"{what} holds NaN or infinite values")
    spread = float(image.std())
    if spread <= _BLANK_RELATIVE_STD * max(abs(float(image.mean())), 1.0):
        raise CalibrationFailedError(
            f"{what} is blank (no detail to correlate): a shift cannot be measured"
        )
    return image


def _cross_power(reference: np.ndarray, moved: np.ndarray) -> np.ndarray:
    """Whitened, low-passed cross-power spectrum whose inverse FFT peaks at the shift
    of ``moved`` against ``reference``."""
    window = np.outer(_tukey(reference.shape[0]), _tukey(reference.shape[1]))
    a = np.fft.fft2((reference - reference.mean()) * window)
    b = np.fft.fft2((moved - moved.mean()) * window)
    cross = b * np.conj(a)
    magnitude = np.abs(cross)
    cross /= magnitude + 1e-3 * magnitude.max() + 1e-30
    fy = np.fft.fftfreq(reference.shape[0])[:, None]
    fx = np.fft.fftfreq(reference.shape[1])[None, :]
    # a Gaussian low-pass: noise beyond a third of Nyquist adds nothing to the peak
    cross *= np.exp(-(fy**2 + fx**2) / (2 * 0.12**2))
    return cross


def _peaks(
    correlation: np.ndarray, predicted, radius: float | None, count: int
) -> list[tuple[float, int, int]]:
    """The highest local maxima ``(height, dy, dx)`` (signed integer shifts), within
    ``radius`` of ``predicted`` (dy, dx) when given."""
    ny, nx = correlation.shape
    local = correlation == ndimage.maximum_filter(correlation, size=5, mode="wrap")
    dy = (np.arange(ny) + ny // 2) % ny - ny // 2
    dx = (np.arange(nx) + nx // 2) % nx - nx // 2
    # only shifts that leave more than half of the image overlapping in each axis
    allowed = (np.abs(dy)[:, None] < 0.45 * ny) & (np.abs(dx)[None, :] < 0.45 * nx)
    if radius is not None:
        py, px = predicted
        allowed &= (dy[:, None] - py) ** 2 + (dx[None, :] - px) ** 2 <= radius**2
    rows, cols = np.nonzero(local & allowed)
    heights = correlation[rows, cols]
    order = np.argsort(heights)[::-1][:count]
    return [(float(heights[i]), int(dy[rows[i]]), int(dx[cols[i]])) for i in order]


def _refine(cross: np.ndarray, dy: int, dx: int, upsample: int = 50) -> tuple[float, float]:
    """Sub-pixel peak near (dy, dx) by a DFT upsampled ``upsample`` times over ±1.5 px
    (Guizar-Sicairos et al., Opt. Lett. 33, 156 (2008)), then a parabola through the
    finest samples."""
    ny, nx = cross.shape
    half = 1.5
    steps = np.arange(-half, half + 1e-9, 1.0 / upsample)
    ky = np.fft.fftfreq(ny) * ny
    kx = np.fft.fftfreq(nx) * nx
    ey = np.exp(2j * np.pi * np.outer(dy + steps, ky) / ny)
    ex = np.exp(2j * np.pi * np.outer(kx, dx + steps) / nx)
    fine = (ey @ cross @ ex).real
    iy, ix = np.unravel_index(int(np.argmax(fine)), fine.shape)
    oy = _parabola(fine[max(iy - 1, 0) : iy + 2, ix]) if 0 < iy < len(steps) - 1 else 0.0
    ox = _parabola(fine[iy, max(ix - 1, 0) : ix + 2]) if 0 < ix < len(steps) - 1 else 0.0
    return dy + steps[iy] + oy / upsample, dx + steps[ix] + ox / upsample


def _refine_overlap(reference, moved, sy: float, sx: float) -> tuple[float, float]:
    """The shift measured again on the overlapping parts only (``moved`` cropped where
    the integer shift puts the reference's content): the remaining shift is below a
    pixel, so the window no longer pulls the peak towards zero."""
    ny, nx = reference.shape
    iy, ix = int(round(sy)), int(round(sx))
    r0, r1 = max(0, -iy), min(ny, ny - iy)
    c0, c1 = max(0, -ix), min(nx, nx - ix)
    if r1 - r0 < 16 or c1 - c0 < 16:
        return sy, sx
    a = reference[r0:r1, c0:c1]
    b = moved[r0 + iy : r1 + iy, c0 + ix : c1 + ix]
    ry, rx = _refine(_cross_power(a, b), 0, 0)
    if abs(ry) > 1.5 or abs(rx) > 1.5:
        return sy, sx
    return iy + ry, ix + rx


def _parabola(values) -> float:
    if len(values) != 3:
        return 0.0
    a, b, c = values
    denominator = a - 2 * b + c
    return 0.0 if denominator >= 0 else float(0.5 * (a - c) / denominator)


def measure_shift(reference, moved, predicted=None, radius: float | None = None):
    """The shift of ``moved`` against ``reference`` (binned px of the stored array).

    Parameters
    ----------
    reference, moved : 2D arrays of one shape
    predicted : (float, float), optional
        Expected shift (drow, dcol); with ``radius`` the peak is only looked for within
        ``radius`` px of it.
    radius : float, optional

    Returns
    -------
    (drow, dcol, height)
        The content of ``moved`` sits ``(drow, dcol)`` from where it is in ``reference``;
        ``height`` is the peak height of the whitened correlation (1 = identical).

    Raises
    ------
    CalibrationFailedError
        A blank image, or no peak where it is looked for.
    """
    reference = _check_image(reference, "the reference image")
    moved = _check_image(moved, "the moved image")
    if reference.shape != moved.shape:
        raise InvalidDataError(f"images of different shapes: {reference.shape}, {moved.shape}")
    cross = _cross_power(reference, moved)
    correlation = np.fft.ifft2(cross).real
    norm = float(np.fft.ifft2(np.abs(cross)).real[0, 0]) or 1.0
    found = _peaks(correlation, predicted or (0, 0), radius, 1)
    if not found:
        raise CalibrationFailedError("no correlation peak near the predicted shift")
    height, dy, dx = found[0]
    sy, sx = _refine_overlap(reference, moved, *_refine(cross, dy, dx))
    return sy, sx, height / norm


# ---------------------------------------------------------------------------------------
# a series of steps


def _noise(correlation: np.ndarray) -> float:
    """The correlation map's noise: the median absolute deviation as a standard deviation
    (robust to the peaks, however many a periodic specimen makes)."""
    deviation = np.abs(correlation - np.median(correlation))
    return float(1.4826 * np.median(deviation)) or 1.0


@dataclass
class _Step:
    cross: np.ndarray
    candidates: list[tuple[float, float, float]]  # (height, dy, dx), binned px
    norm: float
    spread: float  # standard deviation of the correlation map


def _steps(images) -> list[_Step]:
    steps = []
    for k in range(1, len(images)):
        cross = _cross_power(images[k - 1], images[k])
        correlation = np.fft.ifft2(cross).real
        norm = float(np.fft.ifft2(np.abs(cross)).real[0, 0]) or 1.0
        candidates = _peaks(correlation, (0, 0), None, _CANDIDATES)
        steps.append(_Step(cross, candidates, norm, _noise(correlation)))
    return steps
