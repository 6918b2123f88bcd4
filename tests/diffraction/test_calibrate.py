"""The Done-when checks of issue 34 on simulated patterns (the wider sweep is
benchmarks/bench_diffraction.py)."""

import math

import numpy as np
import pytest

from napari_emcal.diffraction import calibrate_camera_length, ring_pattern
from napari_emcal.diffraction.simulate import halo_pattern, spot_pattern
from napari_emcal.diffraction.standards import OTHER_STRUCTURES, electron_wavelength
from napari_emcal.errors import CalibrationFailedError, Cancelled, InvalidDataError

D111 = 4.0786e-10 / math.sqrt(3)


def _pattern(size, kv, ratio, angle, seed, first_ring=0.2, **kw):
    rng = np.random.default_rng(seed)
    l_px = size * first_ring / math.tan(2 * math.asin(electron_wavelength(kv * 1e3) / (2 * D111)))
    centre = tuple(size / 2 + rng.uniform(-0.07, 0.07, 2) * size)
    return ring_pattern(
        (size, size),
        camera_length=l_px * 15e-6,
        detector_pixel_size=15e-6,
        beam_energy=kv * 1e3,
        centre=centre,
        axis_ratio=ratio,
        angle_deg=angle,
        ring_width_px=1.2 + size / 512,
        dose=40.0,
        texture=0.25,
        seed=seed,
        **kw,
    )


def _calibrate(image, truth, **kw):
    return calibrate_camera_length(
        image,
        standard="Au",
        beam_energy=truth.beam_energy,
        detector_pixel_size=truth.detector_pixel_size,
        **kw,
    )


def _check(result, truth):
    assert result.camera_length == pytest.approx(truth.camera_length, rel=1e-3)
    assert abs(result.camera_length - truth.camera_length) < 3 * result.camera_length_sigma
    assert abs(result.axis_ratio - truth.axis_ratio) < 0.002
    assert abs(result.axis_ratio - truth.axis_ratio) < 3 * result.axis_ratio_sigma + 1e-4
    for k in range(2):
        assert abs(result.centre[k] - truth.centre[k]) < 0.1
        assert abs(result.centre[k] - truth.centre[k]) < 3 * result.centre_sigma[k]
    if truth.axis_ratio >= 1.01:
        d_angle = (result.angle_deg - truth.angle_deg + 90) % 180 - 90
        assert abs(d_angle) < 2.0
        assert abs(d_angle) < 3 * result.angle_sigma_deg
    assert result.axis_ratio >= 1.0 and 0 <= result.angle_deg < 180


@pytest.mark.parametrize(
    "size, kv, ratio, angle, extra",
    [
        (256, 80, 1.02, 60.0, {}),
        (256, 300, 1.00, 0.0, {}),
        (512, 120, 1.03, 170.0, {"saturation": 400.0, "central_beam": 200.0}),
        (512, 200, 1.012, 95.0, {"beam_stop": 12.0, "central_beam": 200.0}),
    ],
)
def test_accuracy_and_coverage(size, kv, ratio, angle, extra):
    image, truth = _pattern(size, kv, ratio, angle, seed=size + kv, **extra)
    result = _calibrate(image, truth)
    _check(result, truth)
    assert len(result.rings) >= 3
    assert all(abs(r.residual_px) < 4 * r.sigma_px + 0.05 for r in result.rings)
    assert result.reciprocal_pixel_size == pytest.approx(
        truth.detector_pixel_size / (truth.wavelength * truth.camera_length), rel=1e-3
    )


def test_errors_cover_truth_over_noise_realisations():
    """The reported sigmas are honest: |error| < 3 sigma on every one of several noisy
    patterns of one geometry (the standardised errors' spread near 1, not far below)."""
    z = []
    for seed in range(4):
        image, truth = _pattern(256, 200, 1.015, 30.0, seed=seed)
        result = _calibrate(image, truth)
        z.append((result.camera_length - truth.camera_length) / result.camera_length_sigma)
        z.append((result.centre[1] - truth.centre[1]) / result.centre_sigma[1])
        z.append((result.axis_ratio - truth.axis_ratio) / result.axis_ratio_sigma)
    z = np.abs(z)
    assert z.max() < 3.0


def test_json_values_have_units_sigmas_sources():
    image, truth = _pattern(256, 200, 1.02, 40.0, seed=5)
    result = _calibrate(image, truth, sources={"beam_energy": "typed"})
    values = result.to_json()["values"]
    for name in ("camera_length", "centre", "ellipse_axis_ratio", "ellipse_angle_deg"):
        assert {"value", "unit", "sigma", "source"} <= set(values[name])
    assert values["camera_length"]["unit"] == "m"
    assert values["beam_energy"]["source"] == "typed"
    assert len(values["centre"]["value"]) == 2
    # py4DSTEM's p_ellipse: (qx0, qy0, a, b, theta), qx the first array axis
    qx0, qy0, a, b, theta = result.p_ellipse()
    assert (qx0, qy0) == result.centre and a / b == pytest.approx(result.axis_ratio)


REFUSALS = {
    "amorphous": (lambda: halo_pattern((256, 256)), "amorphous"),
    "bcc offered as Au": (
        lambda: ring_pattern((256, 256), standard=OTHER_STRUCTURES["W"], camera_length=0.08)[0],
        "not Au's",
    ),
    "featureless": (lambda: np.full((256, 256), 7.0), "featureless"),
    "smooth, no rings": (
        lambda: 100 * np.exp(-np.hypot(*np.mgrid[-128:128, -128:128]) / 60.0),
        "no significant rings",
    ),
    "noise": (
        lambda: np.random.default_rng(0).poisson(30, (256, 256)).astype(float),
        "no significant rings",
    ),
    "single crystal [011]": (lambda: spot_pattern((256, 256), camera_length=0.07), "spots"),
    "single crystal [001]": (
        lambda: spot_pattern((256, 256), camera_length=0.07, zone="001"),
        "spots",
    ),
}


@pytest.mark.parametrize("name", list(REFUSALS))
def test_refusals_say_why(name):
    make, reason = REFUSALS[name]
    with pytest.raises(CalibrationFailedError, match=reason):
        calibrate_camera_length(make(), standard="Au", beam_energy=200e3, detector_pixel_size=15e-6)


def test_bad_input():
    with pytest.raises(InvalidDataError):
        calibrate_camera_length(np.zeros((10, 10)), beam_energy=200e3, detector_pixel_size=1e-5)
    with pytest.raises(InvalidDataError):
        calibrate_camera_length(
            np.zeros((2, 100, 100)), beam_energy=200e3, detector_pixel_size=1e-5
        )
    with pytest.raises(ValueError):
        calibrate_camera_length(np.ones((100, 100)), beam_energy=200e3, detector_pixel_size=-1)


def test_cancel():
    image, truth = _pattern(256, 200, 1.0, 0.0, seed=1)
    with pytest.raises(Cancelled):
        _calibrate(image, truth, cancelled=lambda: True)
