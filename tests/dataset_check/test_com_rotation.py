"""Scan rotation and handedness from the curl of simulated centre-of-mass fields."""

import numpy as np
import pytest
from scipy import ndimage

from napari_emcal.dataset_check.com_rotation import com_rotation, compare_rotations
from napari_emcal.errors import CalibrationFailedError
from napari_emcal.geometry import rotation_flip_matrix


def field(rotation, flip, noise=0.0, shape=(48, 48), seed=0):
    """The CoM a detector records for a curl-free specimen field, given the true twin."""
    rng = np.random.default_rng(seed)
    potential = ndimage.gaussian_filter(rng.normal(size=shape), 2.0) * 50
    e_y, e_x = np.gradient(potential)
    inverse = np.linalg.inv(rotation_flip_matrix(rotation, flip))
    d_y = inverse[0, 0] * e_y + inverse[0, 1] * e_x
    d_x = inverse[1, 0] * e_y + inverse[1, 1] * e_x
    scale = np.std(d_y)
    return (d_y + rng.normal(0, noise * scale, shape), d_x + rng.normal(0, noise * scale, shape))


def angle_error(a, b):
    return abs((a - b + 90) % 180 - 90)  # modulo 180°


@pytest.mark.parametrize("rotation", [-170.0, -37.5, 0.0, 12.3, 83.0, 135.0])
@pytest.mark.parametrize("flip", [False, True])
def test_rotation_and_flip_recovered(rotation, flip):
    found = com_rotation(*field(rotation, flip))
    assert found.flip_y == flip and found.flip_certain
    assert angle_error(found.scan_rotation, rotation) < 0.1


def test_noise_and_its_uncertainty():
    errors = []
    for seed in range(20):
        found = com_rotation(*field(23.0, True, noise=0.3, seed=seed), seed=seed)
        assert found.flip_y
        errors.append(angle_error(found.scan_rotation, 23.0) / found.scan_rotation_sigma)
    assert np.mean(np.array(errors) < 3) >= 0.9
    assert (
        max(
            angle_error(com_rotation(*field(23.0, True, noise=0.3, seed=s)).scan_rotation, 23.0)
            for s in range(5)
        )
        < 1.0
    )


def test_pure_noise_gives_no_answer():
    rng = np.random.default_rng(5)
    with pytest.raises(CalibrationFailedError):
        com_rotation(rng.normal(size=(32, 32)), rng.normal(size=(32, 32)))


def test_comparison_with_another_calibration():
    found = com_rotation(*field(40.0, False))
    assert compare_rotations(found, 40.1, False).startswith("agree within")
    assert "180°" in compare_rotations(found, 220.0, False)
    assert "handedness" in compare_rotations(found, 40.0, True)
    assert compare_rotations(found, 55.0, False).startswith("disagree by")


def test_the_twin_file_is_read_for_the_comparison(tmp_path):
    from napari_emcal.dataset_check.cli import _twin_rotation
    from napari_emcal.errors import InvalidDataError
    from napari_emcal.overfocus import TwinParams

    TwinParams(
        overfocus=1e-6,
        scan_pixel_size=1e-9,
        camera_length=0.15,
        detector_pixel_size=55e-6,
        cy=1,
        cx=1,
        scan_rotation=83.006,
        flip_y=True,
    ).save(tmp_path / "twin.json")
    assert _twin_rotation(tmp_path / "twin.json")[:2] == (pytest.approx(83.006), True)
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(InvalidDataError, match="not a twin-parameter file"):
        _twin_rotation(tmp_path / "bad.json")
