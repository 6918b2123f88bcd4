"""The dose formulas against the worked examples and hand-checked numbers."""

import math

import pytest

from napari_emcal.dose import (
    flux_from_counts,
    frame_time,
    stem_flux,
    stem_frame_dose,
    stem_probe_dose,
    tem_flux,
)
from napari_emcal.errors import InvalidParameterError


def test_tem_worked_example():
    # 1 nA over a 1 µm diameter beam
    assert tem_flux(1e-9, illuminated_diameter=1e-6) == pytest.approx(79.47, abs=0.005)
    assert tem_flux(1e-9, illuminated_area=math.pi * (1e-6) ** 2 / 4) == pytest.approx(
        79.47, abs=0.005
    )


def test_stem_worked_example():
    # 50 pA, 512 x 512 scan over 500 Å x 500 Å, 10 µs dwell
    assert stem_flux(50e-12, 500e-10) == pytest.approx(1248.3, abs=0.05)
    assert stem_flux(50e-12, (500e-10, 500e-10)) == pytest.approx(1248.3, abs=0.05)
    assert frame_time((512, 512), 10e-6) == pytest.approx(2.621, abs=5e-4)
    assert stem_frame_dose(50e-12, 500e-10, (512, 512), 10e-6) == pytest.approx(3272.3, abs=0.05)


def test_stem_probe_dose_and_units():
    # the same beam on one probe position of (500/512) Å: 512² times the frame dose
    # the frame dose is spread over 512² positions, each as large as the probe step:
    # every position gets the frame's dose, 3272.3 e/Å²
    step = 500e-10 / 512
    assert stem_probe_dose(50e-12, step, 10e-6) == pytest.approx(3272.3, abs=0.05)
    # rectangular steps and fields: y and x enter as a product
    assert stem_probe_dose(50e-12, (2e-10, 1e-10), 1e-6) == pytest.approx(
        50e-12 * 1e-6 / 1.602176634e-19 / 2.0
    )
    assert stem_flux(1e-12, (1e-9, 4e-9)) == pytest.approx(1e-12 / 1.602176634e-19 / 400)


def test_flyback_is_per_line():
    assert frame_time((100, 200), 1e-6, flyback_time=500e-6) == pytest.approx(
        100 * (200e-6 + 500e-6)
    )
    with_flyback = stem_frame_dose(50e-12, 500e-10, (512, 512), 10e-6, flyback_time=1e-3)
    assert with_flyback == pytest.approx(1248.3018 * (2.62144 + 0.512), rel=1e-6)


def test_flux_from_counts():
    # 1000 counts/px/s at 2 counts per electron on 1 Å pixels: 500 e/Å²/s
    assert flux_from_counts(1000, 2, 1e-10) == pytest.approx(500)
    assert flux_from_counts(1000, 1, (1e-10, 2e-10)) == pytest.approx(500)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: tem_flux(1e-9), "illuminated area or the beam diameter"),
        (lambda: tem_flux(1e-9, illuminated_area=1e-12, illuminated_diameter=1e-6), "one of them"),
        (lambda: tem_flux(-1e-9, illuminated_diameter=1e-6), "must not be negative"),
        (lambda: tem_flux(1e-9, illuminated_diameter=0), "must be positive"),
        (lambda: stem_flux(1e-12, (1e-9,)), r"\(y, x\) pair"),
        (lambda: stem_flux(1e-12, float("nan")), "finite"),
        (lambda: frame_time((0, 10), 1e-6), "scan shape must be positive"),
        (lambda: frame_time((10, 10), 1e-6, flyback_time=-1), "must not be negative"),
        (lambda: stem_probe_dose(1e-12, 1e-10, "fast"), "must be a number"),
        (lambda: flux_from_counts(10, 0, 1e-10), "counts per electron must be positive"),
    ],
)
def test_invalid_input(call, message):
    with pytest.raises(InvalidParameterError, match=message):
        call()
