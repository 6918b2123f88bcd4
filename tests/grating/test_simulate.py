"""The simulated lattice is where its parameters say (independent of the finder)."""

import numpy as np
import pytest

from napari_emcal.errors import InvalidParameterError
from napari_emcal.grating import lattice_image


def test_dark_lines_at_the_period():
    image = lattice_image(
        (64, 200),
        spacing_px=25.0,
        angle_deg=0.0,
        line_width=0.1,
        contrast=0.8,
        blur_px=0,
        dose=None,
    )
    profile = image[32 + 12]  # a row half-way between the horizontal lines
    dark = np.flatnonzero(profile < 0.6)
    # lines centred on x = nx/2 + k * period
    centres = [c for c in 100 + 25 * np.arange(-4, 4)]
    for c in centres:
        assert c in dark
    assert profile[112] == pytest.approx(1.0, abs=1e-3)  # half-way between lines: bright
    assert image[32, 112] < 0.3  # on a horizontal line (y = ny/2)


def test_rotation_moves_the_lines():
    image = lattice_image(
        (101, 101),
        spacing_px=20.0,
        angle_deg=30.0,
        line_width=0.1,
        contrast=0.8,
        blur_px=0,
        dose=None,
    )
    # the first direction at 30° (towards +y): a point one period along it from the centre
    # lies on a line, half a period along it between lines
    theta = np.deg2rad(30.0)
    on = (
        round(50.5 + 20 * np.sin(theta) + 10 * np.cos(theta)),
        round(50.5 + 20 * np.cos(theta) - 10 * np.sin(theta)),
    )
    off = (
        round(50.5 + 10 * np.sin(theta) + 10 * np.cos(theta)),
        round(50.5 + 10 * np.cos(theta) - 10 * np.sin(theta)),
    )
    assert image[on] < 0.5 < image[off]


def test_poisson_counts_and_validation():
    image = lattice_image((64, 64), spacing_px=8.0, dose=100, seed=1)
    assert np.allclose(image, np.round(image)) and 40 < image.mean() < 100
    with pytest.raises(InvalidParameterError):
        lattice_image((64, 64), spacing_px=1.0)
    with pytest.raises(InvalidParameterError):
        lattice_image((64, 64), spacing_px=8.0, motif="stars")
