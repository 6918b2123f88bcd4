import numpy as np
import pytest

from napari_emcal.errors import InvalidDataError, InvalidParameterError
from napari_emcal.overfocus import TwinParams, simulate

P = TwinParams(
    overfocus=1e-6,
    scan_pixel_size=1e-9,
    camera_length=0.1,
    detector_pixel_size=50e-6,
    cy=15.5,
    cx=15.5,
    semiconv=8e-3,
)


def test_frames_follow_the_twin_mapping():
    specimen = np.random.default_rng(0).random((64, 64))
    data = simulate(specimen, (8, 8), (32, 32), P.replace(semiconv=None))
    # pixel d at scan s sees specimen at origin + s + M (d - c), here checked on one sample
    origin = np.array([(64 - 8) // 2, (64 - 8) // 2])
    t = origin + P.detector_to_specimen([20, 9], [3, 5])
    from scipy.ndimage import map_coordinates

    expected = map_coordinates(specimen, t.reshape(2, 1), order=1)[0]
    assert data[3, 5, 20, 9] == pytest.approx(expected, rel=1e-5)


def test_dose_gives_poisson_counts_in_the_disk():
    specimen = np.ones((64, 64))
    data = simulate(specimen, (16, 16), (32, 32), P, dose=1000, seed=1)
    assert data.dtype == np.uint16
    assert data.sum(axis=(2, 3)).mean() == pytest.approx(1000, rel=0.02)
    assert data[..., ~P.bright_field_mask((32, 32))].max() == 0
    again = simulate(specimen, (16, 16), (32, 32), P, dose=1000, seed=1)
    np.testing.assert_array_equal(data, again)


def test_bad_input():
    with pytest.raises(InvalidDataError, match="2D"):
        simulate(np.ones((4, 4, 4)), (4, 4), (8, 8), P)
    with pytest.raises(InvalidDataError, match="NaN"):
        simulate(np.full((8, 8), np.nan), (4, 4), (8, 8), P)
    with pytest.raises(InvalidParameterError, match="dose"):
        simulate(np.ones((8, 8)), (4, 4), (8, 8), P, dose=-1)
    with pytest.raises(InvalidParameterError, match="scan_shape"):
        simulate(np.ones((8, 8)), (0, 4), (8, 8), P)


def test_descan_moves_the_beam_and_the_disk_per_frame():
    descan = ((0.12, -0.05), (0.04, 0.1))
    p = P.replace(cy=31.5, cx=31.5, descan=descan)
    specimen = np.random.default_rng(0).random((64, 64))
    scan = (9, 11)
    data = simulate(specimen, scan, (64, 64), p)
    origin = np.array([(64 - 9) // 2, (64 - 11) // 2])
    from scipy.ndimage import map_coordinates

    for s in ([0, 0], [8, 10], [2, 7]):
        # pixel d sees origin + s + M (d - c(s)): the mapping with the moving centre
        t = origin + p.detector_to_specimen([30, 35], s, scan)
        expected = map_coordinates(specimen, t.reshape(2, 1), order=1)[0]
        assert data[s[0], s[1], 30, 35] == pytest.approx(expected, rel=1e-5)
        # the bright-field disk sits around c(s)
        mask = data[s[0], s[1]] > 0
        yy, xx = np.nonzero(mask)
        np.testing.assert_allclose([yy.mean(), xx.mean()], p.centre_at(s, scan), atol=0.15)
        np.testing.assert_array_equal(mask, p.bright_field_mask((64, 64), s, scan))
    # without descan, as before: the disk stays at (cy, cx)
    still = simulate(specimen, scan, (64, 64), p.replace(descan=((0, 0), (0, 0))))
    np.testing.assert_array_equal(still[0, 0] > 0, still[8, 10] > 0)
