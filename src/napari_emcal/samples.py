"""Sample datasets with known ground truth, built from the recipes in ``sample_data/``.

Pure computation (no napari): the napari sample-data contributions and the CLI's
``sample`` dataset call these.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np

from .grating import lattice_image
from .highdefocus import defocus_pair
from .overfocus import TwinParams, simulate
from .specimens import grating_specimen

__all__ = [
    "grating_image",
    "high_defocus_pair",
    "in_situ_series",
    "overfocus_grating",
    "sample_recipe",
]


def sample_recipe(name: str) -> dict[str, Any]:
    """The JSON recipe of a sample dataset (``sample_data/<name>.json``)."""
    path = resources.files("napari_emcal") / "sample_data" / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8"))


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
