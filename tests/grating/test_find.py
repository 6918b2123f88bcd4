"""find_pixel_size against simulated lattices with known pixel size and angle."""

import numpy as np
import pytest

from napari_emcal.errors import InvalidDataError, InvalidParameterError
from napari_emcal.grating import find_pixel_size, known_spacings, lattice_image
from napari_emcal.specimens import detailed_specimen

GRATING_NM = 1e6 / 2160


def angle_error(found, true, period=90.0):
    return (found - true + period / 2) % period - period / 2


@pytest.mark.parametrize(
    "repeats, size, angle, border, blur, dose, width",
    [
        (3.0, 1024, 23.0, 0.0, 2.0, 50, 0.15),
        (4.2, 768, -61.0, 0.12, 1.5, 20, 0.2),
        (12.5, 1024, 7.3, 0.0, 1.0, 10, 0.1),
        (40.0, 1536, -33.0, 0.15, 1.2, 50, 0.15),
        (95.0, 1024, 81.0, 0.0, 0.8, 100, 0.25),
        (170.0, 2048, -4.0, 0.08, 1.0, 30, 0.15),
    ],
)
def test_grating_recovered(repeats, size, angle, border, blur, dose, width):
    period_px = size / repeats
    image = lattice_image(
        (size, size),
        spacing_px=period_px,
        angle_deg=angle,
        line_width=width,
        blur_px=blur,
        dose=dose,
        dark_border=border,
        seed=3,
    )
    result = find_pixel_size(image)
    assert result.found, result.message
    true_pixel = GRATING_NM / period_px
    assert result.pixel_size_nm == pytest.approx(true_pixel, rel=2e-3)
    assert abs(angle_error(result.angle_deg, angle)) < 0.2
    assert -45 < result.angle_deg <= 45
    assert result.angle_between_deg == pytest.approx(90, abs=0.5)
    assert min(result.intervals) >= 1 and result.quality >= 0.5
    assert result.spacing_px[0] == pytest.approx(period_px, rel=2e-3)
    # peaks lie on the fitted lattice and the start peak is one of the nearest
    assert result.peaks.shape[1] == 2 and len(result.peaks) == len(result.peak_series)
    assert np.hypot(*result.start_peak) == pytest.approx(period_px, rel=0.02)


def test_non_square_image_and_integer_dtype():
    image = lattice_image((700, 1100), spacing_px=31.7, angle_deg=12.0, dose=40, seed=1)
    result = find_pixel_size(image.astype(np.uint16))
    assert result.found
    assert result.pixel_size_nm == pytest.approx(GRATING_NM / 31.7, rel=2e-3)


def test_spacing_override_scales_the_pixel_size():
    image = lattice_image((512, 512), spacing_px=20.0, angle_deg=5.0, dose=None)
    default = find_pixel_size(image)
    override = find_pixel_size(image, spacing_nm=100.0)
    assert override.pixel_size_nm == pytest.approx(100.0 / 20.0, rel=2e-3)
    assert default.pixel_size_nm / override.pixel_size_nm == pytest.approx(GRATING_NM / 100.0)


def test_mesh_mode():
    # 400 mesh: 63.5 µm period, here 80 px: bars 30 % of the period, nearly opaque
    image = lattice_image(
        (1024, 1024),
        spacing_px=80.0,
        angle_deg=-17.0,
        line_width=0.3,
        contrast=0.95,
        blur_px=2.0,
        dose=30,
        dark_border=0.1,
        seed=2,
    )
    result = find_pixel_size(image, mode="mesh", mesh=400)
    assert result.found, result.message
    assert result.spacing_nm == pytest.approx((63500.0, 63500.0))
    assert result.pixel_size_nm == pytest.approx(63500.0 / 80.0, rel=2e-3)
    assert abs(angle_error(result.angle_deg, -17.0)) < 0.2


def test_catalase_mode_rectangular_lattice():
    short = 14.0
    image = lattice_image(
        (1024, 1024),
        spacing_px=(short, short * 17.5 / 6.85),
        angle_deg=64.0,
        motif="blobs",
        line_width=0.4,
        blur_px=1.0,
        dose=20,
        seed=4,
    )
    result = find_pixel_size(image, mode="catalase")
    assert result.found, result.message
    assert result.pixel_size_nm == pytest.approx(6.85 / short, rel=2e-3)
    # the first direction is the short axis; a rectangular lattice repeats after 180°
    assert abs(angle_error(result.angle_deg, 64.0, period=180.0)) < 0.2
    assert result.spacing_px[1] / result.spacing_px[0] == pytest.approx(17.5 / 6.85, rel=2e-3)


def test_lattice_mode_atomic_columns():
    image = lattice_image(
        (1024, 1024),
        spacing_px=9.3,
        angle_deg=-38.0,
        motif="blobs",
        line_width=0.45,
        blur_px=1.0,
        dose=15,
        seed=5,
    )
    result = find_pixel_size(image, mode="lattice", spacing_nm=0.3905)
    assert result.found, result.message
    assert result.pixel_size_nm == pytest.approx(0.3905 / 9.3, rel=2e-3)
    assert abs(angle_error(result.angle_deg, -38.0)) < 0.2


def test_marker_starts_from_the_peak_it_marks():
    period = 40.0
    image = lattice_image((1024, 1024), spacing_px=period, angle_deg=10.0, dose=50, seed=6)
    automatic = find_pixel_size(image)
    assert np.hypot(*automatic.start_peak) == pytest.approx(period, rel=0.02)
    # a marker near the diagonal peak: the user asks for the (1, 1) series, which walks a
    # lattice √2 coarser at 45° to the first
    theta = np.deg2rad(10.0 + 45.0)
    marker = (period * np.sqrt(2) * np.sin(theta) + 2.0, period * np.sqrt(2) * np.cos(theta) - 1.5)
    retried = find_pixel_size(image, marker=marker)
    assert retried.found
    assert np.hypot(*np.subtract(retried.start_peak, marker)) < 4
    assert retried.spacing_px[0] == pytest.approx(period * np.sqrt(2), rel=2e-3)
    assert abs(angle_error(retried.angle_deg, 55.0)) < 0.2
    assert retried.pixel_size_nm == pytest.approx(automatic.pixel_size_nm / np.sqrt(2), rel=2e-3)


@pytest.mark.parametrize(
    "image",
    [
        np.random.default_rng(0).poisson(40, (768, 768)).astype(float),
        detailed_specimen((768, 768), feature_size=2.0, seed=2),
        detailed_specimen((768, 768), feature_size=6.0, seed=3),
        np.full((256, 256), 7.0),
    ],
    ids=["noise", "texture", "coarse-texture", "uniform"],
)
def test_no_lattice_is_a_clear_result_not_a_number(image):
    result = find_pixel_size(image)
    assert not result.found
    assert result.message.startswith("no lattice found")
    assert result.pixel_size_nm is None and result.angle_deg is None
    assert result.to_dict()["pixel_size_nm"] is None


def test_bad_input_raises_specific_errors():
    image = lattice_image((256, 256), spacing_px=16.0, dose=None)
    with pytest.raises(InvalidDataError, match="2D"):
        find_pixel_size(np.zeros((4, 64, 64, 2)))
    with pytest.raises(InvalidDataError, match="RGB"):
        find_pixel_size(np.zeros((64, 64, 3)))
    with pytest.raises(InvalidDataError, match="too small"):
        find_pixel_size(np.zeros((16, 300)))
    nan = image.copy()
    nan[3, 3] = np.nan
    with pytest.raises(InvalidDataError, match="NaN"):
        find_pixel_size(nan)
    with pytest.raises(InvalidParameterError, match="mode"):
        find_pixel_size(image, mode="diffraction")
    with pytest.raises(InvalidParameterError, match="mesh"):
        find_pixel_size(image, mode="mesh")
    with pytest.raises(InvalidParameterError, match="spacing_nm"):
        find_pixel_size(image, mode="lattice")
    with pytest.raises(InvalidParameterError, match="positive"):
        find_pixel_size(image, spacing_nm=-3)
    with pytest.raises(InvalidParameterError, match="marker"):
        find_pixel_size(image, marker=(0.0, 0.0))
    with pytest.raises(InvalidParameterError, match="binned_size"):
        find_pixel_size(image, binned_size=10)


def test_known_spacings():
    assert known_spacings() == pytest.approx((462.96296, 462.96296))
    assert known_spacings("catalase") == (6.85, 17.5)
    assert known_spacings("mesh", mesh=2000) == pytest.approx((12700.0, 12700.0))
    assert known_spacings("lattice", spacing_nm=0.5) == (0.5, 0.5)


def test_binned_size_sets_the_binning():
    image = lattice_image((2048, 2048), spacing_px=64.0, angle_deg=3.0, dose=50, seed=7)
    result = find_pixel_size(image, binned_size=512)
    assert result.binning == 4
    assert result.pixel_size_nm == pytest.approx(GRATING_NM / 64.0, rel=2e-3)
    # the autocorrelation's pixel of a lag, and back
    pixel = result.autocorrelation_pixel(result.start_peak)
    assert np.all(pixel >= 0) and np.all(pixel < result.autocorrelation.shape)
