"""Overfocus calibration of 4D STEM with a digital twin.

Core (no Qt, no napari): :class:`TwinParams`, :func:`compute`, :func:`simulate`,
:func:`estimate` and :func:`calibrate` (automatic calibration).
:class:`OverfocusPass` is the pass the engine runs (in this process or, through
:class:`napari_emcal.engine.PassUDF`, on any LiberTEM executor).
"""

from ..geometry import rotation_flip_matrix
from .calibrate import CalibrationResult, calibrate, estimate
from .images import OUTPUTS, OverfocusPass, compute
from .simulate import simulate, specimen_on_scan_grid
from .twin import TwinParams

__all__ = [
    "OUTPUTS",
    "CalibrationResult",
    "OverfocusPass",
    "TwinParams",
    "calibrate",
    "compute",
    "estimate",
    "rotation_flip_matrix",
    "simulate",
    "specimen_on_scan_grid",
]
