"""Electron flux and cumulative dose for every image of an experiment.

Pure computation; the dock widget lives in ``_qt``.
"""

from .calibration import CurrentCalibration, CurrentLookup
from .formulas import (
    ELEMENTARY_CHARGE,
    flux_from_counts,
    frame_time,
    stem_flux,
    stem_frame_dose,
    stem_probe_dose,
    tem_flux,
)
from .table import ACCUMULATION, DoseTable

__all__ = [
    "ACCUMULATION",
    "ELEMENTARY_CHARGE",
    "CurrentCalibration",
    "CurrentLookup",
    "DoseTable",
    "flux_from_counts",
    "frame_time",
    "stem_flux",
    "stem_frame_dose",
    "stem_probe_dose",
    "tem_flux",
]
