"""measure() against simulated near-focus / defocused pairs with a known scale and rotation."""

import numpy as np
import pytest

from napari_emcal.errors import CalibrationFailedError, InvalidDataError, InvalidParameterError
from napari_emcal.highdefocus import aligned_far, defocus_pair, line_estimate, measure


def drawn_lines(pair, near_ends, error_px, rng):
    """Lines a user draws between two features: each end off by up to ``error_px``."""
    near_ends = np.asarray(near_ends, float)
    far_ends = pair.near_to_far(near_ends)
    return (
        near_ends + rng.uniform(-error_px, error_px, (2, 2)),
        far_ends + rng.uniform(-error_px, error_px, (2, 2)),
    )


@pytest.mark.parametrize(
    "specimen, scale, rotation, shift, blur, size, ends",
    [
        # non-periodic texture, both rotation signs, 5-20 % magnification, partial overlap
        ("detailed", 1.05, 2.0, (0, 0), 1.5, 768, [(150, 160), (600, 580)]),
        ("detailed", 1.20, -10.0, (90, -120), 3.0, 768, [(200, 300), (520, 170)]),
        ("detailed", 1.12, 6.5, (-60, 40), 2.5, 1024, [(700, 200), (380, 880)]),
        # a strongly periodic grating (faint texture) and a perfect lattice with only particles
        ("grating", 1.08, -4.0, (40, 30), 2.0, 768, [(200, 200), (560, 520)]),
        ("lattice", 1.15, 8.0, (-50, 70), 1.5, 768, [(180, 420), (560, 240)]),
    ],
)
def test_recovers_scale_and_rotation(specimen, scale, rotation, shift, blur, size, ends):
    pair = defocus_pair(
        (size, size),
        scale=scale,
        rotation_deg=rotation,
        shift=shift,
        specimen=specimen,
        period_px=22.0,
        blur_px=blur,
        dose_near=150,
        dose_far=40,
        seed=7,
    )
    rng = np.random.default_rng(11)
    near_line, far_line = drawn_lines(pair, ends, 3.0, rng)
    result = measure(pair.near, pair.far, near_line, far_line)
    assert result.refined
    assert result.scale == pytest.approx(scale, rel=2e-3)
    assert result.rotation_deg == pytest.approx(rotation, abs=0.1)
    # the mapping itself is right (translation too): features land within a pixel
    assert np.abs(result.near_to_far(pair.landmarks) - pair.near_to_far(pair.landmarks)).max() < 1
    assert result.score > result.line_score
    assert result.patches >= 10 and result.residual_px < 1.5


def test_perfect_lattice_with_worst_case_lines_is_not_fooled():
    """No texture, no particles: only the lines can tell the lattice positions apart."""
    pair = defocus_pair(
        (768, 768),
        scale=1.10,
        rotation_deg=-7.0,
        specimen="lattice",
        landmarks=0,
        period_px=18.0,
        blur_px=1.5,
        dose_near=200,
        dose_far=60,
        seed=2,
    )
    near_ends = np.array([[200.0, 150.0], [530.0, 600.0]])
    corners = np.array([[3, -3], [-3, 3]], float)  # errors that shorten and turn the lines most
    near_line = near_ends + corners
    far_line = pair.near_to_far(near_ends) - corners
    result = measure(pair.near, pair.far, near_line, far_line)
    assert abs(result.line_scale / 1.10 - 1) > 5e-3  # the lines alone are visibly off
    assert result.scale == pytest.approx(1.10, rel=2e-3)
    assert result.rotation_deg == pytest.approx(-7.0, abs=0.1)


def test_different_image_sizes_and_binning():
    pair = defocus_pair(
        (1536, 1536),
        far_shape=(1024, 1280),
        scale=1.18,
        rotation_deg=3.0,
        shift=(30, -20),
        blur_px=2.5,
        seed=4,
    )
    near_line, far_line = drawn_lines(
        pair, [(500, 400), (1000, 1100)], 2.0, np.random.default_rng(0)
    )
    result = measure(pair.near, pair.far, near_line, far_line)
    assert result.binning == 2
    assert result.scale == pytest.approx(1.18, rel=2e-3)
    assert result.rotation_deg == pytest.approx(3.0, abs=0.1)
    assert np.abs(result.near_to_far(pair.landmarks) - pair.near_to_far(pair.landmarks)).max() < 1
    assert 0 < result.overlap < 1


def test_line_estimate_and_sign_convention():
    # a horizontal line (+x) that comes out 10 % longer, turned 5° towards +y (clockwise)
    turned = 10 + 110 * np.sin(np.deg2rad(5)), 20 + 110 * np.cos(np.deg2rad(5))
    scale, rotation, matrix, offset = line_estimate([(0, 0), (0, 100)], [(10, 20), turned])
    assert scale == pytest.approx(1.1)
    assert rotation == pytest.approx(5.0)
    assert matrix @ [0, 100] + offset == pytest.approx(turned)
    # nearly reversed: the rotation is reported in (-180°, 180°]
    assert line_estimate([(0, 0), (0, 100)], [(0, 0), (-1, -100)])[1] == pytest.approx(
        -180 + np.rad2deg(np.arctan2(1, 100))
    )


def test_refine_false_returns_the_line_estimate():
    pair = defocus_pair((512, 512), scale=1.1, rotation_deg=4.0, seed=1)
    near_ends = np.array([[100.0, 100.0], [400.0, 380.0]])
    result = measure(pair.near, pair.far, near_ends, pair.near_to_far(near_ends), refine=False)
    assert not result.refined and result.patches == 0
    assert result.scale == result.line_scale == pytest.approx(1.1, rel=1e-9)
    assert result.rotation_deg == pytest.approx(4.0)
    assert result.score == result.line_score > 0.3


def test_aligned_far_matches_near():
    pair = defocus_pair(
        (512, 512), scale=1.1, rotation_deg=-3.0, blur_px=0.0, dose_near=None, dose_far=None, seed=5
    )
    near_ends = np.array([[100.0, 120.0], [420.0, 400.0]])
    result = measure(pair.near, pair.far, near_ends, pair.near_to_far(near_ends))
    aligned = aligned_far(pair.far, result, pair.near.shape)
    valid = np.isfinite(aligned)
    assert valid.mean() > 0.7
    assert np.abs(aligned[valid] - pair.near[valid]).mean() < 0.02
    assert result.far_to_near(result.near_to_far([5.0, 7.0])) == pytest.approx([5.0, 7.0])
    assert set(result.to_dict()) >= {"scale", "rotation_deg", "score", "line_scale", "matrix"}


@pytest.mark.parametrize(
    "near_line, message",
    [
        ([(100, 100), (100, 100)], "zero length"),
        ([(100, 100), (150, 180)], "94.3 px long"),
        ([(100, 100), (100, 199)], "at least 100 px apart"),
        ([(100, 100), (100, 900)], "leaves the near-focus image"),
        ([(100, 100), (np.nan, 300)], "non-finite"),
        ([(100, 100, 3)], r"\(\(y0, x0\), \(y1, x1\)\)"),
    ],
)
def test_bad_lines_are_refused(near_line, message):
    image = np.ones((512, 512))
    with pytest.raises(InvalidParameterError, match=message):
        measure(image, image, near_line, [(100, 100), (300, 300)])


def test_short_far_line_is_refused():
    image = np.ones((512, 512))
    with pytest.raises(InvalidParameterError, match="defocused line is 50.0 px"):
        measure(image, image, [(100, 100), (300, 300)], [(100, 100), (100, 150)])


@pytest.mark.parametrize(
    "near, message",
    [
        (np.ones((4, 512, 512)), "must be 2D"),
        (np.ones((32, 512)), "too small"),
        (np.full((512, 512), np.nan), "NaN"),
    ],
)
def test_bad_images_are_refused(near, message):
    with pytest.raises(InvalidDataError, match=message):
        measure(near, np.ones((512, 512)), [(10, 10), (300, 300)], [(10, 10), (300, 300)])


def test_unrelated_images_fail_with_the_line_estimate():
    rng = np.random.default_rng(0)
    near = rng.poisson(100, (512, 512))
    far = rng.poisson(100, (512, 512))
    with pytest.raises(CalibrationFailedError, match="lines alone give scale 1.1"):
        measure(near, far, [(100, 100), (100, 400)], [(100, 100), (100, 430)])


def test_a_line_drawn_the_other_way_is_turned_round():
    from napari_emcal.highdefocus import defocus_pair

    pair = defocus_pair((768, 768), scale=1.08, rotation_deg=-5.3, seed=3)
    near_line = np.array([[200.0, 180.0], [520.0, 560.0]])
    far_line = pair.near_to_far(near_line)
    result = measure(pair.near, pair.far, near_line, far_line[::-1])  # reversed
    assert result.scale == pytest.approx(1.08, rel=2e-3)
    assert abs(result.rotation_deg + 5.3) < 0.1
    assert result.notes and "opposite direction" in result.notes[0]
