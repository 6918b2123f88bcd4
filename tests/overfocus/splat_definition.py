"""Bilinear splatting written out value by value: the definition the kernels are tested
against."""

import numpy as np


def splat_into(image: np.ndarray, value: float, target) -> None:
    """Add ``value`` at the fractional position ``target`` (y, x) of ``image``, shared among
    the four pixels around it with bilinear weights; shares outside ``image`` are dropped."""
    floor = np.floor(target).astype(int)
    fy, fx = np.asarray(target) - floor
    for (ay, ax), weight in (
        ((0, 0), (1 - fy) * (1 - fx)),
        ((0, 1), (1 - fy) * fx),
        ((1, 0), fy * (1 - fx)),
        ((1, 1), fy * fx),
    ):
        ty, tx = floor[0] + ay, floor[1] + ax
        if 0 <= ty < image.shape[0] and 0 <= tx < image.shape[1]:
            image[ty, tx] += weight * value
