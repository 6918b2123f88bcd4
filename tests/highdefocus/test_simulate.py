"""The simulated pairs are what they claim: the truth maps features onto each other."""

import numpy as np
import pytest
from scipy import ndimage

from napari_emcal.errors import InvalidParameterError
from napari_emcal.highdefocus import defocus_pair, similarity


def test_truth_maps_near_onto_far():
    pair = defocus_pair(
        (256, 320),
        far_shape=(240, 300),
        scale=1.15,
        rotation_deg=-6.0,
        shift=(12, -7),
        blur_px=0.0,
        dose_near=None,
        dose_far=None,
        seed=3,
    )
    assert pair.near.shape == (256, 320) and pair.far.shape == (240, 300)
    # sample the defocused image where the truth says each near-focus pixel went
    yy, xx = np.mgrid[20:230, 20:300].astype(float)
    q = pair.near_to_far(np.stack([yy, xx], axis=-1))
    inside = ((q >= 2) & (q <= np.array(pair.far.shape) - 3)).all(axis=-1)
    resampled = ndimage.map_coordinates(pair.far, np.moveaxis(q, -1, 0), order=3)
    error = np.abs(resampled - pair.near[20:230, 20:300])[inside]
    assert inside.mean() > 0.6 and error.mean() < 0.01
    assert pair.matrix == pytest.approx(similarity(1.15, -6.0))


def test_noise_blur_and_types():
    pair = defocus_pair((128, 128), blur_px=3.0, dose_near=400, dose_far=50, seed=0)
    assert pair.near.dtype == pair.far.dtype == np.uint16
    assert pair.near.mean() == pytest.approx(400 * 0.55, rel=0.3)
    assert pair.far.mean() == pytest.approx(50 * 0.55, rel=0.3)
    # the defocused image is smoother (blurred) once noise is taken out
    near_detail = np.abs(np.diff(ndimage.gaussian_filter(pair.near / 400.0, 1), axis=1)).mean()
    far_detail = np.abs(np.diff(ndimage.gaussian_filter(pair.far / 50.0, 1), axis=1)).mean()
    assert far_detail < near_detail


def test_similarity_turns_clockwise_on_screen():
    # +x turned by +90° points to +y (down the screen)
    assert similarity(2.0, 90.0) @ [0.0, 1.0] == pytest.approx([2.0, 0.0])


@pytest.mark.parametrize("kwargs", [{"scale": 0}, {"specimen": "cells"}])
def test_bad_parameters(kwargs):
    with pytest.raises(InvalidParameterError):
        defocus_pair((64, 64), **kwargs)
