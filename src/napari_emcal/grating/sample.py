"""The grating sample: a simulated image of a cross-line replica grating at a known pixel
size (recipe ``sample_data/grating_image.json``)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from ..specimens import sample_recipe
from .simulate import lattice_image

__all__ = ["grating_image"]


@lru_cache(maxsize=1)
def grating_image() -> tuple[np.ndarray, dict[str, Any]]:
    """Simulated image of a cross-line replica grating (2160 lines/mm) at a known pixel size.

    Returns
    -------
    image : ndarray of uint16, shape (2048, 2048)
        Counts: bright squares, dark lines, blur, Poisson noise, a grid bar along the left
        edge and the beam edge in the lower right corner.
    metadata : dict
        ``"magnification"`` (the nominal one a microscope would record) and
        ``"ground_truth"``: ``pixel_size_nm`` and ``angle_deg``.
    """
    recipe = sample_recipe("grating_image")
    period_px = recipe["grating_period_nm"] / recipe["pixel_size_nm"]
    image = lattice_image(
        tuple(recipe["shape"]),
        spacing_px=period_px,
        angle_deg=recipe["angle_deg"],
        line_width=recipe["line_width"],
        contrast=recipe["contrast"],
        blur_px=recipe["blur_px"],
        dose=recipe["dose_electrons_per_pixel"],
        dark_border=recipe["dark_border"],
        background=recipe["background"],
        seed=recipe["noise_seed"],
    )
    image = np.clip(image, 0, 65535).astype(np.uint16)
    image.setflags(write=False)
    metadata = {
        "source": "sample: grating_image",
        "format": "simulated",
        "magnification": float(recipe["magnification"]),
        "ground_truth": {
            "pixel_size_nm": recipe["pixel_size_nm"],
            "angle_deg": recipe["angle_deg"],
        },
    }
    return image, metadata
