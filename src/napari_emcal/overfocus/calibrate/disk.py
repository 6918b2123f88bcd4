"""The bright-field disk: where the beam falls on the detector, and each pixel's share of it."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage.morphology import convex_hull_image

from ...errors import CalibrationFailedError, InvalidDataError

#: At most this many scan positions per axis are used (a central crop: same scan step).
MAX_SCAN = 128
#: Frames (spread over the scan) averaged to find the bright-field disk.
DISK_FRAMES = 64
#: A 5th percentile of the mean frame above this fraction of its bright level is not dark.
DARK_FRACTION = 0.25


@dataclass
class _Disk:
    """The bright-field disk in full detector pixels."""

    mean_frame: np.ndarray  # (dy, dx) float64, mean of DISK_FRAMES frames
    mask: np.ndarray  # bool (dy, dx): the disk (convex, shadows inside it included)
    illumination: np.ndarray  # (dy, dx) float64 in [0, 1]: each pixel's share of the beam
    centre: np.ndarray  # (cy, cx), centroid of the illumination
    radius: float


def _central_crop(data):
    """At most MAX_SCAN x MAX_SCAN scan positions from the middle (same scan step)."""
    sy, sx = data.shape[:2]
    y0, x0 = max(0, (sy - MAX_SCAN) // 2), max(0, (sx - MAX_SCAN) // 2)
    return data[y0 : y0 + MAX_SCAN, x0 : x0 + MAX_SCAN]


def _find_disk(data) -> _Disk:
    """Bright-field disk of the mean of a few frames spread over the scan."""
    sy, sx = data.shape[:2]
    idx = np.unique(np.linspace(0, sy * sx - 1, min(DISK_FRAMES, sy * sx)).astype(int))
    mean = np.zeros(data.shape[2:], np.float64)
    for i in idx:
        mean += np.asarray(data[i // sx, i % sx], dtype=np.float64)
    mean /= len(idx)
    if not np.isfinite(mean).all():
        bad = np.argwhere(~np.isfinite(mean))
        raise InvalidDataError(
            f"The frames hold NaN or infinite values ({len(bad)} detector pixels of the mean "
            f"of {len(idx)} frames, first at detector pixel {tuple(int(v) for v in bad[0])}): "
            "replace or mask them before calibrating."
        )
    smooth = ndimage.gaussian_filter(mean, 1.0)
    lo, hi = np.percentile(smooth, [5, 99.5])
    if not hi > lo:
        raise CalibrationFailedError("The frames are uniform: there is no bright-field disk.")
    # Half way between dark and bright. Where the 5th percentile is itself well lit the
    # disk fills the detector, and the spread above it is the specimen's shadow: take
    # the dark level as zero then.
    dark = lo if lo < DARK_FRACTION * hi else 0.0
    mask = smooth > 0.5 * (dark + hi)
    labels, n = ndimage.label(mask)
    if n > 1:  # keep the largest bright region
        sizes = ndimage.sum(mask, labels, range(1, n + 1))
        mask = labels == 1 + int(np.argmax(sizes))
    # The mean of a few frames still shows the specimen's shadow where the specimen has
    # structure as large as the scan: the disk is the convex hull of the bright region.
    mask = convex_hull_image(mask)
    illumination = _illumination(mean, mask)
    # the disk's geometric centre: an intensity centroid would follow the specimen's shadow
    centre = np.array(ndimage.center_of_mass(illumination))
    return _Disk(mean, mask, illumination, centre, math.sqrt(mask.sum() / math.pi))


#: Detector pixels on either side of the disk's edge whose share of the beam is measured.
EDGE_BAND_PX = 2


def _illumination(mean: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Each detector pixel's share of the beam, 0..1.

    A region's point image is the plain sum of its pixels' specimen images weighted by
    the *illumination* of each pixel, not by the mean frame, which also holds the
    specimen's shadow (weighting by it moved the centroids, hence the fitted rotation and
    magnification, by up to 0.2° and 2 % on specimens with structure as large as the
    scan). Inside the disk the beam is taken as uniform; only the band along the edge,
    where a pixel is partly lit, is weighted by its brightness relative to the disk.
    """
    interior = ndimage.binary_erosion(mask, iterations=EDGE_BAND_PX)
    band = ndimage.binary_dilation(mask, iterations=EDGE_BAND_PX) & ~interior
    level = np.percentile(mean[mask], 90) if mask.any() else 0.0
    out = interior.astype(np.float64)
    if level > 0:
        out[band] = np.clip(mean[band] / level, 0.0, 1.0)
    return out
