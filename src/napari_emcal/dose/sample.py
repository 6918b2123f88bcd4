"""The dose sample: a simulated liquid-cell TEM time series with the metadata a dose table
needs (recipe ``sample_data/in_situ_series.json``)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from ..specimens import sample_recipe

__all__ = ["in_situ_series"]


@lru_cache(maxsize=1)
def in_situ_series() -> tuple[np.ndarray, dict[str, Any]]:
    """A short liquid-cell TEM time series with the metadata a dose table needs (simulated).

    Returns
    -------
    stack : ndarray of uint16, shape (8, 256, 256)
        Particles that shrink as the experiment goes on, Poisson noise.
    metadata : dict
        The common conditions (``mode``, ``voltage_kv``, ``aperture_um``, ``probe``,
        ``illuminated_diameter_um``, ``pixel_size_nm``, ``magnification``), ``"frames"``:
        one dict per image with its ``time``, ``spot`` and ``exposure_s``, and
        ``"current_calibration"``: Faraday-cup currents per spot size.
    """
    import pandas as pd
    from scipy import ndimage

    recipe = sample_recipe("in_situ_series")
    rng = np.random.default_rng(recipe["seed"])
    shape = tuple(recipe["shape"])
    start = pd.Timestamp(recipe["start"])
    centres = rng.uniform(20, np.asarray(shape) - 20, size=(recipe["particles"], 2))
    radii = rng.uniform(4.0, 12.0, recipe["particles"])  # pixels
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    shrink = recipe["dissolution_nm_per_s"] / recipe["pixel_size_nm"]  # px per s
    stack, frames = [], []
    for frame in recipe["frames"]:
        image = np.full(shape, 1.0)
        for (cy, cx), r in zip(centres, radii - shrink * frame["seconds"]):
            if r > 0.5:
                image -= 0.6 / (1 + np.exp((np.hypot(yy - cy, xx - cx) - r) * 1.5))
        image = ndimage.gaussian_filter(np.clip(image, 0.05, None), 0.8)
        stack.append(rng.poisson(image * recipe["dose_electrons_per_pixel"]))
        frames.append(
            {
                "time": (start + pd.Timedelta(seconds=frame["seconds"])).isoformat(),
                "spot": frame["spot"],
                "exposure_s": frame["exposure_s"],
            }
        )
    keys = (
        "mode",
        "voltage_kv",
        "aperture_um",
        "probe",
        "illuminated_diameter_um",
        "pixel_size_nm",
        "magnification",
    )
    metadata = {
        "source": "sample: in_situ_series",
        "format": "simulated",
        **{k: recipe[k] for k in keys},
        "frames": frames,
        "current_calibration": recipe["current_calibration"],
    }
    data = np.asarray(stack, dtype=np.uint16)
    data.setflags(write=False)
    return data, metadata
