"""Pixel size from an image of a calibration grating (or any lattice) by autocorrelation.

Pure computation; the dock widget lives in ``_qt``.
"""

from .find import MODES, PixelSizeResult, find_pixel_size, known_spacings
from .simulate import lattice_image
from .table import PixelSizeTable

__all__ = [
    "MODES",
    "PixelSizeResult",
    "PixelSizeTable",
    "find_pixel_size",
    "known_spacings",
    "lattice_image",
]
