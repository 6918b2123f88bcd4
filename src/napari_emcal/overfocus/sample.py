"""The overfocus sample: simulated overfocused 4D STEM of a cross grating, with its
ground truth (recipe ``sample_data/overfocus_grating.json``)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from ..specimens import grating_specimen, sample_recipe
from .simulate import simulate
from .twin import TwinParams

__all__ = ["overfocus_grating"]


@lru_cache(maxsize=2)
def overfocus_grating() -> tuple[np.ndarray, dict[str, Any]]:
    """Simulated overfocused 4D STEM of a cross grating with particles.

    Returns
    -------
    data : ndarray of uint16, shape (48, 48, 64, 64)
    metadata : dict
        In the structure of :mod:`napari_emcal.io.readers` (scan step, detector pixel
        size, camera length, beam energy, dwell time), plus ``"ground_truth"`` (the true
        :class:`TwinParams` as a JSON document) and ``"nominal"`` (the starting guess a
        microscope would give: overfocus read-out and no rotation).
    """
    recipe = sample_recipe("overfocus_grating")
    truth = TwinParams.from_json_dict(recipe["twin"])
    spec = recipe["specimen"]
    specimen = grating_specimen(
        tuple(spec["shape"]),
        period=spec["period_px"],
        line_width=spec["line_width_px"],
        angle_deg=spec["angle_deg"],
        particles=spec["particles"],
        seed=spec["seed"],
    )
    data = simulate(
        specimen,
        tuple(recipe["scan_shape"]),
        tuple(recipe["detector_shape"]),
        truth,
        dose=recipe["dose_electrons_per_frame"],
        seed=recipe["noise_seed"],
    )
    nominal = TwinParams.from_json_dict(
        {"parameters": {**recipe["twin"]["parameters"], **recipe["nominal"]}}
    )
    metadata = {
        "source": "sample: overfocus_grating",
        "format": "simulated",
        "scan_step": [truth.scan_pixel_size] * 2,
        "detector_pixel_size": [truth.detector_pixel_size] * 2,
        "camera_length": truth.camera_length,
        "beam_energy": float(recipe["beam_energy_eV"]),
        "dwell_time": float(recipe["dwell_time_s"]),
        "scan_shape_guessed": False,
        "ground_truth": truth.to_json_dict(),
        "nominal": nominal.to_json_dict(),
    }
    data.setflags(write=False)
    return data, metadata
