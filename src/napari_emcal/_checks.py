"""Input checks the tools share, so that bad input gets the same clear message everywhere."""

from __future__ import annotations

import numpy as np

from .errors import InvalidDataError


def image_2d(image, *, name: str = "the image", min_size: int = 32) -> np.ndarray:
    """A real, finite 2D array (singleton axes dropped), or InvalidDataError saying why."""
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[-1] in (3, 4):
        raise InvalidDataError(f"{name} is RGB; pick a greyscale image of the specimen")
    array = np.squeeze(array)
    if array.ndim != 2:
        raise InvalidDataError(f"{name} must be 2D (y, x); got an array of shape {np.shape(image)}")
    if min(array.shape) < min_size:
        raise InvalidDataError(
            f"{name} ({array.shape[0]} x {array.shape[1]}) is too small; "
            f"at least {min_size} x {min_size} pixels are needed"
        )
    if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise InvalidDataError(f"{name} must be real numbers; got dtype {array.dtype}")
    if not np.all(np.isfinite(array)):
        raise InvalidDataError(f"{name} holds NaN or infinite values; replace them first")
    return array
