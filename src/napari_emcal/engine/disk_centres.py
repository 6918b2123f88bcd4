"""The bright-field disk's centre in every frame, and the descan fitted from it.

The centre is taken from the disk's edge (the midpoints of its chords), so the specimen's
shadow inside the disk does not move it, as it moves a centre of mass. No tool knowledge.
"""

from __future__ import annotations

import numba
import numpy as np

from ..errors import CalibrationFailedError
from .descan import Descan, fit_descan
from .passes import Buffer, FramePass

__all__ = ["DESCAN_SCAN", "DISK_LEVEL", "DiskCentres", "disk_threshold", "measure_descan"]


@numba.njit(nogil=True, cache=True)
def _chord_midpoints(smooth, threshold, out):
    """Per frame, the disk centre from the midpoints of its chords: along every row (and
    column) the first and last crossing of ``threshold``, to sub-pixel by linear
    interpolation; the median of the midpoints of the chords at least half as long as the
    longest. Shadows inside the disk do not move the outermost crossings; chords that
    reach the detector edge are left out. NaN where no chord is found."""
    n, dy, dx = smooth.shape
    mids = np.empty(max(dy, dx))
    lengths = np.empty(max(dy, dx))
    for i in range(n):
        for axis in range(2):
            lines = dy if axis == 0 else dx
            length = dx if axis == 0 else dy
            count = 0
            for line in range(lines):
                first = -1
                last = -1
                for j in range(length):
                    v = smooth[i, line, j] if axis == 0 else smooth[i, j, line]
                    if v > threshold:
                        if first < 0:
                            first = j
                        last = j
                if first <= 0 or last < 0 or last >= length - 1:
                    continue
                if axis == 0:
                    a0, a1 = smooth[i, line, first - 1], smooth[i, line, first]
                    b0, b1 = smooth[i, line, last], smooth[i, line, last + 1]
                else:
                    a0, a1 = smooth[i, first - 1, line], smooth[i, first, line]
                    b0, b1 = smooth[i, last, line], smooth[i, last + 1, line]
                left = first - (a1 - threshold) / (a1 - a0)
                right = last + (b0 - threshold) / (b0 - b1)
                mids[count] = 0.5 * (left + right)
                lengths[count] = right - left
                count += 1
            value = np.nan
            if count > 0:
                longest = lengths[:count].max()
                chosen = mids[:count][lengths[:count] >= 0.5 * longest]
                value = np.median(chosen)
            # rows give the x centre, columns the y centre
            out[i, 1 - axis] = value


class DiskCentres(FramePass):
    """The bright-field disk's centre (detector px) in every frame, from its edge
    (:func:`_chord_midpoints` on the frame smoothed by a 1-px Gaussian), robust to the
    specimen's shadow inside the disk.

    Parameters
    ----------
    threshold : float
        The level between dark and the disk's brightness (counts), e.g. half way.
    window : bool ndarray (det_y, det_x), optional
        Where the disk can be (outside it, scattered counts are ignored).
    """

    def __init__(self, threshold: float, window=None):
        self.threshold = float(threshold)
        self.window = None if window is None else np.asarray(window, dtype=bool)

    def buffers(self, scan_shape, detector_shape):
        return {"centre": Buffer("nav", (2,))}

    def process(self, buffers, frames, scan_y, scan_x, task):
        from scipy import ndimage

        smooth = ndimage.gaussian_filter(
            np.asarray(frames, dtype=np.float64), (0, 1.0, 1.0), mode="nearest"
        )
        if self.window is not None:
            smooth *= self.window
        out = np.empty((len(frames), 2))
        _chord_midpoints(smooth, self.threshold, out)
        buffers["centre"][:] = out

    def finish(self, buffers, scan_shape, detector_shape, task):
        return buffers["centre"]


#: The disk's edge is taken where a frame crosses this fraction of the way from dark to the
#: disk's level: low, so that the specimen's shadow inside the disk (rarely that dark)
#: does not move the edge; the edge's own blur moves it equally on every side.
DISK_LEVEL = 0.3


def disk_threshold(mean_frame) -> float:
    """The level :class:`DiskCentres` takes the disk's edge at: DISK_LEVEL of the way from
    the dark level to the disk's level of a mean frame."""
    from scipy import ndimage

    smooth = ndimage.gaussian_filter(np.asarray(mean_frame, dtype=np.float64), 1.0)
    lo, hi = np.percentile(smooth, [5, 99.5])
    if not hi > lo:
        raise CalibrationFailedError("The frames are uniform: there is no bright-field disk.")
    dark = lo if lo < 0.25 * hi else 0.0
    return dark + DISK_LEVEL * (hi - dark)


#: At most this many scan positions per axis have their disk measured for the descan fit
#: (a regular subset: the fit's precision grows with the scan's extent, not its density).
DESCAN_SCAN = 64


def measure_descan(data, mean_frame, window=None, progress=None) -> Descan:
    """The descan of ``data`` from the disk's centre in (a regular subset of at most
    :data:`DESCAN_SCAN` per axis of) its frames, fitted by :func:`fit_descan`.

    ``mean_frame`` (a mean of frames spread over the scan) sets the edge's level;
    ``window`` (bool, detector shape), where the disk can be in any frame.

    Raises
    ------
    CalibrationFailedError
        No disk in enough frames.
    """
    from .passes import run_local

    sy, sx = data.shape[:2]
    step = max(1, -(-max(sy, sx) // DESCAN_SCAN))
    sub = data[::step, ::step]
    centres = run_local(sub, DiskCentres(disk_threshold(mean_frame), window), progress)
    cy = np.full((sy, sx), np.nan)
    cx = np.full((sy, sx), np.nan)
    cy[::step, ::step] = centres[..., 0]
    cx[::step, ::step] = centres[..., 1]
    return fit_descan(cy, cx)
