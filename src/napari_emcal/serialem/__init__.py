"""SerialEM's calibrations from recorded series: image shift, stage shift, high-defocus
image shift, beam intensity and shutter dead time, written as SerialEM reads them.

Pure computation; the dock widget lives in ``_qt``.
"""

from .series import Record, Series, group_key, read_mdoc, read_series
from .shifts import (
    HighDefocusIS,
    ShiftFit,
    fit_shift_matrix,
    high_defocus_image_shift,
    image_shift_matrix,
    measure_shift,
    scale_rotation,
    stage_shift_matrix,
)

__all__ = [
    "HighDefocusIS",
    "Record",
    "Series",
    "ShiftFit",
    "fit_shift_matrix",
    "group_key",
    "high_defocus_image_shift",
    "image_shift_matrix",
    "measure_shift",
    "read_mdoc",
    "read_series",
    "scale_rotation",
    "stage_shift_matrix",
]
