"""Camera length, beam centre and elliptical distortion from the rings of a
polycrystalline standard.

Pure computation; the dock widget lives in ``_qt``.
"""

from .calibrate import DiffractionCalibration, RingFit, calibrate_camera_length
from .simulate import PatternTruth, halo_pattern, ring_pattern, spot_pattern
from .standards import STANDARDS, Standard, electron_wavelength, get_standard

__all__ = [
    "STANDARDS",
    "DiffractionCalibration",
    "PatternTruth",
    "RingFit",
    "Standard",
    "calibrate_camera_length",
    "electron_wavelength",
    "get_standard",
    "halo_pattern",
    "ring_pattern",
    "spot_pattern",
]
