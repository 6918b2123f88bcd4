"""Simulated images of periodic calibration specimens with a known pixel size.

Pure computation (numpy/scipy): the sample data, the tests and the benchmark use these
images as ground truth for :func:`napari_emcal.grating.find_pixel_size`.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.special import erf

from ..errors import InvalidParameterError

__all__ = ["lattice_image"]


def _soft_lines(phase: np.ndarray, width: float, edge: float) -> np.ndarray:
    """1 on lines of ``width`` (in periods) centred on integer ``phase``, anti-aliased."""
    distance = np.abs(phase - np.round(phase))  # 0 on the line centre, 0.5 half-way between
    return 0.5 * (1.0 - erf((distance - width / 2) / edge))


def lattice_image(
    shape: tuple[int, int],
    *,
    spacing_px: float | tuple[float, float],
    angle_deg: float = 0.0,
    motif: str = "lines",
    line_width: float = 0.15,
    contrast: float = 0.6,
    blur_px: float = 1.0,
    dose: float | None = 200.0,
    dark_border: float = 0.0,
    background: float = 0.0,
    seed: int | None = 0,
) -> np.ndarray:
    """Image of a 2D lattice of known spacing and orientation.

    Parameters
    ----------
    shape : (ny, nx)
        Image shape in pixels.
    spacing_px : float or (float, float)
        Lattice periods in pixels along the first direction (at ``angle_deg``) and the
        second one (90° further). One number for a square lattice.
    angle_deg : float
        Direction of the first lattice direction, degrees from the +x (column) axis towards
        +y (rows), i.e. clockwise as napari displays an image.
    motif : {"lines", "blobs"}
        ``"lines"``: bright squares between dark lines (cross-line replica grating, or grid
        bars with a large ``line_width``); ``"blobs"``: a bright spot per lattice point (a
        crystal lattice), plus a weaker one half-way along the second direction when the
        two periods differ (as in catalase, whose 8.75 nm planes are weak).
    line_width : float
        Width of the dark lines as a fraction of the period (``"lines"``), or the spot
        diameter as a fraction of the smaller period (``"blobs"``).
    contrast : float
        Depth of the dark lines (0 none, 1 black) or height of the spots.
    blur_px : float
        Gaussian blur (standard deviation, pixels) standing in for the optics.
    dose : float or None
        Mean electrons per bright pixel: the image is then Poisson counts. None for a
        noise-free image with bright squares at 1.
    dark_border : float
        Fraction of the width covered by dark regions at the edges (a grid bar along the
        left edge and a curved beam edge at the bottom right), 0 for none.
    background : float
        Constant offset added after the noise (a camera pedestal), in counts.
    seed : int or None
        Seed of the noise.

    Returns
    -------
    ndarray of float32, shape ``shape``
    """
    ny, nx = (int(s) for s in shape)
    periods = np.broadcast_to(np.asarray(spacing_px, dtype=float), (2,))
    if ny < 8 or nx < 8:
        raise InvalidParameterError(f"image shape {shape} is too small (at least 8 x 8)")
    if not np.all(np.isfinite(periods)) or np.any(periods < 2):
        raise InvalidParameterError(f"lattice spacing {spacing_px} px must be at least 2 px")
    if motif not in ("lines", "blobs"):
        raise InvalidParameterError(f"motif must be 'lines' or 'blobs', not {motif!r}")
    theta = np.deg2rad(angle_deg)
    y, x = np.mgrid[0:ny, 0:nx].astype(float)
    y -= ny / 2
    x -= nx / 2
    # coordinates along the two lattice directions, in periods
    u = (x * np.cos(theta) + y * np.sin(theta)) / periods[0]
    v = (-x * np.sin(theta) + y * np.cos(theta)) / periods[1]
    if motif == "lines":
        edge = 0.5 / periods  # about one pixel of anti-aliasing, in periods
        lines = np.maximum(_soft_lines(u, line_width, edge[0]), _soft_lines(v, line_width, edge[1]))
        image = 1.0 - contrast * lines
    else:
        radius = line_width * periods.min() / 2
        du = (u - np.round(u)) * periods[0]
        dv = (v - np.round(v)) * periods[1]
        image = 0.3 + contrast * np.exp(-(du**2 + dv**2) / (2 * radius**2))
        if abs(periods[1] - periods[0]) > 1e-6:
            dv_half = (v - np.floor(v) - 0.5) * periods[1]
            image += 0.2 * contrast * np.exp(-(du**2 + dv_half**2) / (2 * radius**2))
    if blur_px > 0:
        image = ndimage.gaussian_filter(image, blur_px)
    if dark_border > 0:
        bar = x < (-nx / 2 + dark_border * nx)  # a grid bar along the left edge
        beam = np.hypot(y + ny * 0.1, x + nx * 0.1) > 0.5 * np.hypot(ny, nx) * (1 - dark_border)
        dark = ndimage.gaussian_filter((bar | beam).astype(float), 2.0)
        image = image * (1 - 0.97 * dark)
    image = np.clip(image, 0, None)
    if dose is not None:
        rng = np.random.default_rng(seed)
        image = rng.poisson(image * float(dose)).astype(float)
    return (image + background).astype(np.float32)
