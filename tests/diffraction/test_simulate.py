import math

import numpy as np
import pytest

from napari_emcal.diffraction.simulate import corrected_radius, ring_pattern
from napari_emcal.errors import InvalidParameterError


def test_ring_lies_at_the_predicted_radius():
    image, truth = ring_pattern((256, 256), dose=None, texture=0, background=0, central_beam=0)
    d111 = 4.0786e-10 / math.sqrt(3)
    radius = truth.camera_length_px * math.tan(2 * math.asin(truth.wavelength / (2 * d111)))
    yy, xx = np.mgrid[0:256, 0:256]
    rho, _ = corrected_radius(yy, xx, truth.centre, 1.0, 0.0)
    ring = np.abs(rho - radius) < 0.5
    assert image[ring].mean() > 0.8  # the strongest ring's peak is 1
    assert image[np.abs(rho - radius - 6) < 0.5].mean() < 0.1


def test_ellipse_axes_follow_the_angle():
    # axis ratio 1.1 with the major axis along +y: the ring is further along y than x
    _, truth = ring_pattern((128, 128), axis_ratio=1.1, angle_deg=90, dose=None)
    rho_y, _ = corrected_radius(truth.centre[0] + 50, truth.centre[1], truth.centre, 1.1, 90)
    rho_x, _ = corrected_radius(truth.centre[0], truth.centre[1] + 50, truth.centre, 1.1, 90)
    assert rho_y == pytest.approx(50 / math.sqrt(1.1))
    assert rho_x == pytest.approx(50 * math.sqrt(1.1))


def test_bad_parameters():
    with pytest.raises(InvalidParameterError):
        ring_pattern((16, 16))
    with pytest.raises(InvalidParameterError):
        ring_pattern((64, 64), axis_ratio=0.9)
