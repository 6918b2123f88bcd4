"""The sample datasets with known ground truth, one per tool, listed in one place.

Each tool owns its sample (``<tool>/sample.py``, built from a recipe in ``sample_data/``);
this module gathers them for the napari sample-data contributions and the CLI's report.
Pure computation (no napari).
"""

from __future__ import annotations

from .dose.sample import in_situ_series
from .grating.sample import grating_image
from .highdefocus.sample import high_defocus_pair
from .overfocus.sample import overfocus_grating
from .specimens import sample_recipe

__all__ = [
    "SAMPLES",
    "grating_image",
    "high_defocus_pair",
    "in_situ_series",
    "overfocus_grating",
    "sample_recipe",
]

#: Every sample, by the name of its recipe in ``sample_data/``.
SAMPLES = {
    "overfocus_grating": overfocus_grating,
    "grating_image": grating_image,
    "high_defocus_pair": high_defocus_pair,
    "in_situ_series": in_situ_series,
}
