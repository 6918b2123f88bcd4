"""Magnification distortion (MotionCor2's -Mag triple) from a measured lattice."""

import json
import math

import numpy as np
import pytest
from scipy import ndimage

from napari_emcal.cli import main
from napari_emcal.grating import find_pixel_size
from napari_emcal.grating.distortion import magnification_distortion
from napari_emcal.grating.simulate import lattice_image


def _stretched(image, angle_deg, factor):
    """``image`` resampled so that each output pixel covers ``factor`` times as much of the
    original along ``angle_deg`` (degrees from +x towards +y)."""
    t = math.radians(angle_deg)
    e = np.array([math.sin(t), math.cos(t)])
    matrix = np.eye(2) + (factor - 1) * np.outer(e, e)
    centre = (np.array(image.shape) - 1) / 2
    return ndimage.affine_transform(
        image, matrix, offset=centre - matrix @ centre, order=3, mode="reflect"
    )


@pytest.mark.parametrize(
    "angle, factor, major_angle", [(30.0, 1.03, 30.0), (-50.0, 1.02, -50.0), (80.0, 0.97, -10.0)]
)
def test_a_stretched_grating_gives_the_stretch_that_undoes_it(angle, factor, major_angle):
    image = lattice_image((512, 512), spacing_px=16.0, angle_deg=7.0, dose=None, seed=1)
    result = find_pixel_size(_stretched(image, angle, factor), mode="lattice", spacing_nm=1.6)
    d = result.distortion()
    # a pixel covers `factor` times the specimen along the axis: the larger of the two
    major = math.sqrt(max(factor, 1 / factor))
    assert d.major == pytest.approx(major, abs=2e-4) and d.major * d.minor == pytest.approx(1)
    assert d.angle_deg == pytest.approx(major_angle, abs=0.5)
    assert d.pixel_size_nm == pytest.approx(0.1 * math.sqrt(factor), rel=2e-4)
    assert d.significant and d.motioncor2_argument().startswith(f"-Mag {d.major:.5f}")
    assert result.to_dict()["distortion"]["motioncor2"] == d.motioncor2_argument()


def test_an_isotropic_image_has_no_significant_distortion():
    image = lattice_image((512, 512), spacing_px=16.0, angle_deg=20.0, dose=200, seed=2)
    d = find_pixel_size(image, mode="lattice", spacing_nm=1.6).distortion()
    assert abs(d.major - 1) < 5e-3 and not d.significant


def test_rectangular_lattice_rotation_does_not_matter():
    """TᵀT of the true lattice is diag(a², b²) whatever its rotation: the same stretch."""
    a, b = 0.4, 0.4 / math.sqrt(2)
    stretch = np.diag([1.0, 1.02])  # (y, x): px per nm along x 2 % larger
    results = []
    for turn in (0.0, 33.0, 71.0):
        t = math.radians(turn)
        true = np.array([[a * math.sin(t), a * math.cos(t)], [b * math.cos(t), -b * math.sin(t)]])
        results.append(magnification_distortion(true @ stretch.T * 50, (a, b)))
    for d in results:
        assert d.major == pytest.approx(results[0].major) and d.angle_deg == pytest.approx(90.0)


def test_cli_export_motioncor2_from_a_pixel_size_result(tmp_path, capsys):
    result = tmp_path / "grating.json"
    assert main(["pixel-size", "sample", "--json", str(result)]) == 0
    capsys.readouterr()
    assert main(["export", "motioncor2", str(result)]) == 0
    out = capsys.readouterr().out
    assert "-Mag " in out.splitlines()[-1]
    assert json.loads(result.read_text())["distortion"]["motioncor2"] in out
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    assert main(["export", "motioncor2", str(bad)]) == 2


def test_the_triple_undoes_the_distortion_of_a_real_perovskite_image():
    """SrTiO3 [001] HAADF (TIA): the lattice is stretched (40.07 / 40.74 px) and sheared.
    Resampling the image by the measured stretch must leave a square lattice."""
    from napari_emcal.io.images import open_image
    from tests.conftest import real_file

    image, _ = open_image(real_file("images/tia_srtio3/16_STOimage_1.ser"))
    image = np.asarray(image, float)
    before = find_pixel_size(image, mode="lattice", spacing_nm=0.3905)
    d = before.distortion()
    assert d.significant and 1.5 < d.distortion_percent < 4
    t = math.radians(d.angle_deg)
    e = np.array([math.sin(t), math.cos(t)])
    stretch = d.major * np.outer(e, e) + d.minor * (np.eye(2) - np.outer(e, e))
    inverse = np.linalg.inv(stretch)  # output (corrected) pixel -> input pixel
    centre = (np.array(image.shape) - 1) / 2
    corrected = ndimage.affine_transform(
        image, inverse, offset=centre - inverse @ centre, order=3, mode="reflect"
    )
    after = find_pixel_size(corrected, mode="lattice", spacing_nm=0.3905)
    assert after.distortion().distortion_percent < 0.3
    assert after.anisotropy_percent < 0.3 and abs(after.angle_between_deg - 90) < 0.15
    assert after.pixel_size_nm == pytest.approx(d.pixel_size_nm, rel=2e-3)
