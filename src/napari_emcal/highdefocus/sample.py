"""The high-defocus sample: a simulated near-focus and high-defocus pair of the same area
(recipe ``sample_data/high_defocus_pair.json``)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from ..specimens import sample_recipe
from .simulate import defocus_pair

__all__ = ["high_defocus_pair"]


@lru_cache(maxsize=1)
def high_defocus_pair() -> tuple[
    tuple[np.ndarray, dict[str, Any]], tuple[np.ndarray, dict[str, Any]]
]:
    """A near-focus image and a high-defocus one of the same area (simulated).

    Returns
    -------
    (near, near_metadata), (far, far_metadata)
        uint16 Poisson counts, 1024 x 1024. The metadata hold what a microscope records
        (``defocus_um``, ``intensity``, ``spot``, ``probe``, ``magnification``); the
        defocused image's also holds ``"ground_truth"``: ``scale``, ``rotation_deg`` and the
        mapping ``matrix``/``offset`` of near-focus pixels onto it, and
        ``"landmarks_near"``/``"landmarks_far"``: where the large particles are in each.
    """
    recipe = sample_recipe("high_defocus_pair")
    pair = defocus_pair(
        tuple(recipe["shape"]),
        scale=recipe["scale"],
        rotation_deg=recipe["rotation_deg"],
        shift=tuple(recipe["shift_px"]),
        specimen=recipe["specimen"],
        feature_size=recipe["feature_size_px"],
        landmarks=recipe["landmarks"],
        blur_px=recipe["blur_px"],
        dose_near=recipe["dose_near_electrons_per_pixel"],
        dose_far=recipe["dose_far_electrons_per_pixel"],
        seed=recipe["seed"],
    )
    common = {
        "format": "simulated",
        "intensity": recipe["intensity"],
        "spot": recipe["spot"],
        "probe": recipe["probe"],
        "magnification": float(recipe["magnification"]),
        "pixel_size_nm": recipe["pixel_size_nm"],
    }
    near_metadata = {
        "source": "sample: high_defocus_pair (near focus)",
        **common,
        "defocus_um": recipe["near_defocus_um"],
    }
    far_metadata = {
        "source": "sample: high_defocus_pair (defocused)",
        **common,
        "defocus_um": recipe["far_defocus_um"],
        "ground_truth": {
            "scale": pair.scale,
            "rotation_deg": pair.rotation_deg,
            "matrix": pair.matrix.tolist(),
            "offset": pair.offset.tolist(),
        },
        "landmarks_near": pair.landmarks.tolist(),
        "landmarks_far": pair.near_to_far(pair.landmarks).tolist(),
    }
    for image in (pair.near, pair.far):
        image.setflags(write=False)
    return (pair.near, near_metadata), (pair.far, far_metadata)
