"""Single-crystal (zone-axis) calibration on simulated spot patterns: looser limits than
the rings' (a dozen spots instead of thousands of ring pixels)."""

import pytest

from napari_emcal.diffraction.simulate import ring_pattern, spot_pattern
from napari_emcal.diffraction.spots import calibrate_spots
from napari_emcal.diffraction.standards import get_standard, zone_reflections
from napari_emcal.errors import CalibrationFailedError


def test_zone_reflections_follow_extinctions():
    labels = {lab for lab, _, _, _ in zone_reflections(get_standard("Au"), "001", 1.5e10)}
    assert {"200", "220", "400"} <= labels and "100" not in labels and "110" not in labels
    labels = {lab for lab, _, _, _ in zone_reflections(get_standard("Au"), "011", 1.0e10)}
    assert {"111", "200", "220", "311"} <= labels


@pytest.mark.parametrize(
    "zone, rotation, ratio, angle, centre",
    [("001", 17.0, 1.02, 40.0, (250.3, 262.7)), ("011", -33.0, 1.01, 120.0, (240.6, 270.2))],
)
def test_spot_pattern_calibration(zone, rotation, ratio, angle, centre):
    image = spot_pattern(
        (512, 512),
        camera_length=0.15,
        zone=zone,
        rotation_deg=rotation,
        axis_ratio=ratio,
        angle_deg=angle,
        centre=centre,
    )
    result = calibrate_spots(
        image, standard="Au", zone=zone, beam_energy=200e3, detector_pixel_size=15e-6
    )
    assert result.camera_length == pytest.approx(0.15, rel=1e-3)
    assert abs(result.camera_length - 0.15) < 3 * result.camera_length_sigma
    assert abs(result.axis_ratio - ratio) < 0.003
    assert abs((result.angle_deg - angle + 90) % 180 - 90) < 3.0
    assert abs(result.centre[0] - centre[0]) < 0.2 and abs(result.centre[1] - centre[1]) < 0.2


def test_rings_are_not_a_zone_axis_pattern():
    image, _ = ring_pattern((256, 256), camera_length=0.07)
    with pytest.raises(CalibrationFailedError):
        calibrate_spots(image, zone="001", beam_energy=200e3, detector_pixel_size=15e-6)
