"""How an image is shown (contrast), the same in napari layers, reports and readers."""

from __future__ import annotations

import numpy as np

__all__ = ["robust_limits"]


#: Most values :func:`robust_limits` sorts: an image's percentiles from every n-th value
#: differ from the exact ones by far less than a display step, and the docks compute
#: limits on the GUI thread for every result they show.
LIMIT_SAMPLES = 1 << 18


def robust_limits(image, percentiles=(0.5, 99.5)) -> tuple[float, float]:
    """Contrast limits from percentiles of the finite values (a few hot pixels or a bright
    disk do not wash the image out); ``(0, 1)`` for an image with no finite value."""
    values = np.asarray(image).ravel()
    if values.size > LIMIT_SAMPLES:  # a regular subsample: limits for display, in ms
        values = values[:: -(-values.size // LIMIT_SAMPLES)]
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return (0.0, 1.0)
    low, high = np.percentile(finite, percentiles)
    return (float(low), float(high if high > low else low + 1.0))
