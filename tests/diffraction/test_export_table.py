import math

import numpy as np
import pytest

from napari_emcal.diffraction import calibrate_camera_length
from napari_emcal.diffraction.export import (
    hyperspy_signal_axes,
    py4dstem_calibration,
    twin_values,
    write_pattern_hspy,
)
from napari_emcal.diffraction.sample import SAMPLE_GEOMETRY, au_ring_pattern
from napari_emcal.diffraction.table import CameraLengthTable


@pytest.fixture(scope="module")
def calibrated():
    image, metadata = au_ring_pattern()
    return image, calibrate_camera_length(
        image, standard="Au", beam_energy=200e3, detector_pixel_size=15e-6
    )


def test_p_ellipse_in_py4dstem_convention(calibrated):
    _, result = calibrated
    fields = py4dstem_calibration(result)
    qx0, qy0, a, b, theta = fields["p_ellipse"]
    # py4DSTEM's canonical form A(x-x0)² + B(x-x0)(y-y0) + C(y-y0)² = 1 with x the first
    # array axis, from (a, b, theta) as its elliptical_coords module defines them
    s2, c2 = math.sin(theta) ** 2, math.cos(theta) ** 2
    big_a = s2 / b**2 + c2 / a**2
    big_c = c2 / b**2 + s2 / a**2
    big_b = 2 * (b**2 - a**2) * math.sin(theta) * math.cos(theta) / (a**2 * b**2)
    # points on the simulated 111 ring: true geometry of the sample
    g = SAMPLE_GEOMETRY
    q, alpha = g["axis_ratio"], math.radians(g["angle_deg"])
    radius = result.rings[0].radius_px
    for phi in np.linspace(0, math.pi, 7):
        along, across = radius * math.sqrt(q) * math.cos(phi), radius / math.sqrt(q) * math.sin(phi)
        dx = along * math.cos(alpha) - across * math.sin(alpha)
        dy = along * math.sin(alpha) + across * math.cos(alpha)
        x, y = g["centre"][0] + dy - qx0, g["centre"][1] + dx - qy0  # x: rows
        assert big_a * x * x + big_b * x * y + big_c * y * y == pytest.approx(1.0, abs=3e-3)
    assert fields["Q_pixel_units"] == "A^-1"
    # after py4DSTEM's correction the 111 ring lies at radius a: 1/d111 in Å⁻¹
    d111 = 4.0786 / math.sqrt(3)
    assert a * fields["Q_pixel_size"] == pytest.approx(1 / d111, rel=1e-3)


def test_hyperspy_axes_and_file(calibrated, tmp_path):
    image, result = calibrated
    axes = hyperspy_signal_axes(result, image.shape)
    assert [ax["name"] for ax in axes] == ["ky", "kx"]
    # the 200 ring's geometric-mean radius is 1/d200 in nm⁻¹ on these axes
    ring = next(r for r in result.rings if r.label == "200")
    assert ring.radius_px * axes[1]["scale"] == pytest.approx(1 / (0.40786 / 2), rel=1e-3)
    assert axes[0]["offset"] == pytest.approx(-result.centre[0] * axes[0]["scale"])
    from rsciio.hspy import file_reader

    path = write_pattern_hspy(tmp_path / "p.hspy", np.asarray(image), result)
    signal = file_reader(str(path))[0]
    assert signal["axes"][1]["scale"] == pytest.approx(axes[1]["scale"])
    mrad = hyperspy_signal_axes(result, image.shape, "mrad")[1]["scale"]
    assert mrad == pytest.approx(15e-6 / 0.150 * 1e3, rel=1e-3)
    assert twin_values(result)["camera_length"] == result.camera_length


def test_table_per_setting_and_csv(calibrated, tmp_path):
    _, result = calibrated
    table = CameraLengthTable()
    table.add(result, nominal_camera_length=0.1545, image="a")
    table.add(result, nominal_camera_length=0.40, image="mistyped nominal")
    table.add(result, nominal_camera_length=0.1545 * 1.01, image="b")
    frame = table.frame
    assert frame["calibrated_over_nominal"].iloc[0] == pytest.approx(0.150 / 0.1545, rel=2e-3)
    assert frame.set_index("image").loc["mistyped nominal", "ratio_outlier"]
    assert not frame.set_index("image").loc["a", "ratio_outlier"]
    path = tmp_path / "cl.csv"
    table.to_csv(path)
    again = CameraLengthTable.from_csv(path)
    assert len(again) == 3
    assert again.camera_length_at(154.5, 200) == pytest.approx(result.camera_length * 1e3)
