"""The diffraction sample: a simulated polycrystalline Au ring pattern with a known camera
length, centre and elliptical distortion (the truth in its metadata)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from .simulate import ring_pattern

__all__ = ["au_ring_pattern", "SAMPLE_GEOMETRY"]

#: The sample's geometry: 512² detector of 15 µm pixels at 200 kV, camera length 150 mm,
#: beam 9 px right of and 12 px above the detector's centre, 1.5 % ellipticity at 35°,
#: a saturated central beam.
SAMPLE_GEOMETRY = {
    "shape": (512, 512),
    "camera_length": 0.150,
    "detector_pixel_size": 15e-6,
    "beam_energy": 200e3,
    "centre": (243.5, 264.5),
    "axis_ratio": 1.015,
    "angle_deg": 35.0,
}


@lru_cache(maxsize=1)
def au_ring_pattern() -> tuple[np.ndarray, dict[str, Any]]:
    """Simulated ring pattern of polycrystalline Au (Poisson noise, texture, a diffuse
    background, a saturated central beam).

    Returns
    -------
    image : ndarray of uint16, shape (512, 512)
    metadata : dict
        ``source``, ``instrument`` (beam energy and detector pixel size, as a file would
        record them) and ``ground_truth`` (camera length, centre, axis ratio, angle).
    """
    g = SAMPLE_GEOMETRY
    image, truth = ring_pattern(
        g["shape"],
        standard="Au",
        camera_length=g["camera_length"],
        detector_pixel_size=g["detector_pixel_size"],
        beam_energy=g["beam_energy"],
        centre=g["centre"],
        axis_ratio=g["axis_ratio"],
        angle_deg=g["angle_deg"],
        ring_width_px=1.8,
        dose=60.0,
        texture=0.25,
        central_beam=300.0,
        saturation=4000.0,
        seed=34,
    )
    image = np.clip(image, 0, 65535).astype(np.uint16)
    image.setflags(write=False)
    source = "sample: au_ring_pattern"
    metadata = {
        "source": source,
        "format": "simulated",
        "instrument": {
            "values": {
                "beam_energy": {"value": g["beam_energy"], "unit": "eV", "source": source},
                "detector_pixel_size": {
                    "value": g["detector_pixel_size"],
                    "unit": "m",
                    "source": source,
                },
                "camera_length": {
                    "value": 0.15 * 1.03,
                    "unit": "m",
                    "source": source + " (nominal, 3 % off)",
                },
            },
            "notes": [],
        },
        "ground_truth": {
            "camera_length_m": truth.camera_length,
            "centre_px": list(truth.centre),
            "ellipse_axis_ratio": truth.axis_ratio,
            "ellipse_angle_deg": truth.angle_deg,
            "standard": "Au",
        },
    }
    return image, metadata
