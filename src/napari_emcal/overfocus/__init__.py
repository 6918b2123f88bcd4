"""Overfocus calibration of 4D STEM with a digital twin.

Core (no Qt, no napari): :class:`TwinParams`, :func:`compute`, :func:`simulate`,
:func:`estimate` and :func:`calibrate` (automatic calibration).
Engine: :class:`OverfocusUDF` (LiberTEM), imported lazily because LiberTEM is heavy.
"""

from .calibrate import CalibrationResult, calibrate, estimate
from .images import OUTPUTS, compute
from .simulate import simulate, specimen_on_scan_grid
from .twin import TwinParams, rotation_flip_matrix

__all__ = ["OUTPUTS", "CalibrationResult", "OverfocusUDF", "TwinParams", "calibrate",
           "compute", "estimate", "rotation_flip_matrix", "simulate", "specimen_on_scan_grid"]


def __getattr__(name):
    if name == "OverfocusUDF":
        from .udf import OverfocusUDF

        return OverfocusUDF
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
