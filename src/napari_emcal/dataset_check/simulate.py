"""Simulated 4D STEM datasets with a known bright-field disk, descan and saturation.

Pure computation (numpy/scipy): the tests and the sample data use these as ground truth
for :mod:`napari_emcal.dataset_check`.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..errors import InvalidParameterError

__all__ = ["diffraction_dataset"]


def diffraction_dataset(
    scan_shape=(24, 32),
    detector_shape=(64, 64),
    *,
    centre=None,
    radius: float = 10.0,
    descan=((0.0, 0.0), (0.0, 0.0)),
    disk_counts: float = 200.0,
    scatter_counts: float = 2.0,
    max_count: float | None = None,
    dtype=np.uint16,
    seed: int | None = 0,
) -> np.ndarray:
    """Diffraction patterns of a specimen of varying thickness: a bright-field disk that
    moves linearly across the scan (descan) and diffuse scattering around it.

    Parameters
    ----------
    scan_shape, detector_shape : (int, int)
    centre : (float, float), optional
        Disk centre at the scan centre, detector pixels (default the detector centre).
    radius : float
        Disk radius, detector pixels.
    descan : 2x2
        Disk shift per scan pixel, rows (cy, cx), columns (sy, sx), detector pixels.
    disk_counts, scatter_counts : float
        Mean counts per pixel inside the disk (thin specimen) and of the scattering at the
        disk edge.
    max_count : float, optional
        Counts are clipped at this value (a saturating detector).
    dtype : numpy dtype
    seed : int, optional

    Returns
    -------
    ndarray (scan_y, scan_x, det_y, det_x)
        Poisson counts.
    """
    if not radius > 0:
        raise InvalidParameterError(f"radius must be positive; got {radius}")
    rng = np.random.default_rng(seed)
    sy, sx = scan_shape
    ny, nx = detector_shape
    centre = ((ny - 1) / 2, (nx - 1) / 2) if centre is None else centre
    descan = np.asarray(descan, float)
    thickness = ndimage.gaussian_filter(rng.random(scan_shape), 1.5)
    thickness = (thickness - thickness.min()) / max(np.ptp(thickness), 1e-12)
    yy, xx = np.mgrid[:ny, :nx].astype(float)
    data = np.empty((sy, sx, ny, nx), dtype=dtype)
    for i in range(sy):
        for j in range(sx):
            cy, cx = np.asarray(centre) + descan @ [i - (sy - 1) / 2, j - (sx - 1) / 2]
            r = np.hypot(yy - cy, xx - cx)
            transmitted = 1.0 - 0.5 * thickness[i, j]
            pattern = disk_counts * transmitted / (1 + np.exp((r - radius) * 2.0))
            pattern += (
                scatter_counts
                * (1.5 - transmitted)
                * np.exp(-np.maximum(r - radius, 0) / (2 * radius))
            )
            counts = rng.poisson(pattern).astype(float)
            if max_count is not None:
                counts = np.minimum(counts, max_count)
            data[i, j] = counts
    return data
