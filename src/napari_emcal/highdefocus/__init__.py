"""High-defocus magnification and rotation from lines drawn between the same two features.

Pure computation; the dock widget lives in ``_qt``.
"""

from ..geometry import similarity
from .measure import MIN_LINE_PX, HighDefocusResult, aligned_far, line_estimate, measure
from .simulate import DefocusPair, defocus_pair
from .table import Added, HighDefocusTable

__all__ = [
    "MIN_LINE_PX",
    "Added",
    "DefocusPair",
    "HighDefocusResult",
    "HighDefocusTable",
    "aligned_far",
    "defocus_pair",
    "line_estimate",
    "measure",
    "similarity",
]
