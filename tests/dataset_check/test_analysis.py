"""Virtual apertures, beam centre, descan and the report against simulated datasets."""

import dask.array as da
import numpy as np
import pytest

from napari_emcal.dataset_check import (
    analyse,
    annulus,
    dataset_report,
    diffraction_dataset,
    disk,
    ellipse,
    estimate_beam,
    find_beam,
    fit_descan,
    polygon,
    saturation_count,
)
from napari_emcal.errors import CalibrationFailedError, InvalidParameterError

DETECTOR = (64, 64)


@pytest.fixture(scope="module")
def centred():
    return diffraction_dataset((20, 24), DETECTOR, centre=(31.5, 31.5), radius=10.0, seed=1)


def test_virtual_images_equal_direct_sums(centred):
    beam = find_beam(centred.sum(axis=(0, 1)))
    masks = {
        "BF": disk(DETECTOR, beam.centre, beam.radius),
        "ADF": annulus(DETECTOR, beam.centre, 1.3 * beam.radius, 30),
        "ellipse": ellipse(DETECTOR, [(10, 10), (10, 30), (25, 30), (25, 10)]),
        "polygon": polygon(DETECTOR, [(40, 5), (60, 20), (45, 40)]),
    }
    lazy = da.from_array(centred, chunks=(5, 7, -1, -1))
    result = analyse(lazy, masks=masks, beam=beam)
    for name, mask in masks.items():
        direct = (centred.astype(float) * mask).sum(axis=(2, 3))
        np.testing.assert_allclose(result.images[name], direct, rtol=1e-12)
    np.testing.assert_allclose(result.total, centred.sum(axis=(2, 3)))
    np.testing.assert_allclose(result.aperture_sum, centred.sum(axis=(0, 1)))
    # bright field is bright where the specimen is thin, annular dark field the opposite
    assert np.corrcoef(result.images["BF"].ravel(), result.images["ADF"].ravel())[0, 1] < -0.5


def test_masks():
    assert disk((5, 5), (2, 2), 1.0).sum() == 5
    ring = annulus((21, 21), (10, 10), 3, 5)
    assert not ring[10, 10] and ring[10, 14] and not ring[10, 16]
    box = ellipse((20, 20), [(5, 2), (5, 18), (15, 18), (15, 2)])  # semi-axes 8 (x), 5 (y)
    assert box[10, 10] and box[10, 17] and not box[10, 19] and box[14, 10] and not box[16, 10]
    with pytest.raises(InvalidParameterError):
        disk((5, 5), (2, 2), 0)
    with pytest.raises(InvalidParameterError):
        annulus((5, 5), (2, 2), 3, 2)


def test_centre_of_mass_turned_by_scan_rotation():
    data = diffraction_dataset(
        (4, 4), DETECTOR, centre=(31.5, 35.5), radius=6.0, scatter_counts=0.0, seed=2
    )
    beam = find_beam(data.sum(axis=(0, 1)))
    plain = analyse(data, beam=beam)
    turned = analyse(data, beam=beam, scan_rotation=90.0)
    # the disk sits on the beam centre: the CoM is near zero in every frame
    assert np.abs(plain.com_y).max() < 0.3 and np.abs(plain.com_x).max() < 0.3
    # relative to the detector centre instead, it is 4 px along +x; R(90°) turns +x towards
    # +y (docs/conventions.md's sense: clockwise on screen)
    off = analyse(data)
    assert np.nanmean(off.com_x) == pytest.approx(4.0, abs=0.2)
    turned_off = analyse(data, scan_rotation=90.0)
    assert np.nanmean(turned_off.com_y) == pytest.approx(4.0, abs=0.2)
    assert np.nanmean(turned_off.com_x) == pytest.approx(0.0, abs=0.2)
    assert turned.com_y.shape == (4, 4)


@pytest.mark.parametrize(
    "centre, radius", [((31.5, 31.5), 10.0), ((20.3, 41.7), 7.5), ((40.0, 18.2), 12.3)]
)
def test_beam_centre_and_radius(centre, radius):
    data = diffraction_dataset(
        (6, 6), DETECTOR, centre=centre, radius=radius, disk_counts=500, seed=3
    )
    beam = find_beam(data.sum(axis=(0, 1)))
    assert beam.cy == pytest.approx(centre[0], abs=0.1)
    assert beam.cx == pytest.approx(centre[1], abs=0.1)
    assert beam.radius == pytest.approx(radius, abs=0.3)
    quick = estimate_beam(data, frames=8)
    assert quick.cy == pytest.approx(centre[0], abs=0.2)


def test_no_disk_is_reported():
    with pytest.raises(CalibrationFailedError, match="no bright-field disk"):
        find_beam(np.full((32, 32), 5.0))


def test_linear_descan_is_measured():
    descan = ((0.06, -0.02), (0.01, -0.08))
    data = diffraction_dataset(
        (24, 32), DETECTOR, centre=(31.0, 32.0), radius=9.0, descan=descan, seed=4
    )
    beam = estimate_beam(data)
    result = analyse(data, beam=beam)
    fit = fit_descan(result.disk_cy, result.disk_cx)
    np.testing.assert_allclose(fit.matrix, descan, atol=0.006)
    report = dataset_report(result, descan_tolerance_px=2.0)
    expected = max(
        np.hypot(*(np.asarray(descan) @ [dy, dx])) for dy in (-23, 0, 23) for dx in (-31, 0, 31)
    )
    assert report.descan.shift_across_scan == pytest.approx(expected, rel=0.08)
    assert report.descan_exceeds
    # a plain pass takes the CoM from a fixed centre: the walk is in it, and matters
    assert report.verdicts["CoM/DPC"][0] == "caution"
    assert not report.com_follows_beam and report.walk["CoM/DPC"].matters
    assert report.descan.shift_map.shape == (2, 24, 32)
    centred = dataset_report(
        analyse(diffraction_dataset((24, 32), DETECTOR, seed=4), beam=beam), descan_tolerance_px=2.0
    )
    assert centred.descan.shift_across_scan < 0.3 and not centred.descan_exceeds


def test_saturated_disk_is_reported():
    data = diffraction_dataset(
        (8, 8), DETECTOR, radius=10.0, disk_counts=400, max_count=255, dtype=np.uint8, seed=5
    )
    beam = estimate_beam(data)
    result = analyse(data, beam=beam, max_count=saturation_count(data.dtype))
    report = dataset_report(result)
    assert report.saturated_fraction > 0.05 and report.saturated_frames > 0.9
    assert report.verdicts["ptychography"][0] == "not suitable"
    assert report.verdicts["CoM/DPC"][0] == "not suitable"
    assert "saturated" in " ".join(report.verdicts["ptychography"][1])
    clean = dataset_report(
        analyse(diffraction_dataset((8, 8), DETECTOR, seed=5), beam=beam, max_count=65535)
    )
    assert clean.saturated_fraction == 0 and clean.verdicts["ptychography"][0] != "not suitable"


def test_off_centre_disk_touching_the_edge_is_reported():
    data = diffraction_dataset((8, 8), DETECTOR, centre=(31.5, 58.0), radius=10.0, seed=6)
    beam = estimate_beam(data)
    report = dataset_report(analyse(data, beam=beam, max_count=65535))
    assert report.edge_fraction == 1.0
    assert report.beam.cx > 50
    assert report.verdicts["CoM/DPC"][0] == "not suitable"
    assert "edge" in " ".join(report.verdicts["CoM/DPC"][1])
    centred = dataset_report(
        analyse(
            diffraction_dataset((8, 8), DETECTOR, seed=6),
            beam=estimate_beam(diffraction_dataset((8, 8), DETECTOR, seed=6)),
            max_count=65535,
        )
    )
    assert centred.edge_fraction == 0.0


def test_angles_from_camera_length():
    data = diffraction_dataset((4, 4), DETECTOR, centre=(31.5, 31.5), radius=10.0, seed=7)
    report = dataset_report(
        analyse(data, beam=estimate_beam(data)), camera_length=0.1, detector_pixel_size=55e-6
    )
    corner = np.hypot(31.5, 31.5) * 55e-6 / 0.1 * 1e3
    assert report.max_angle_mrad == pytest.approx(corner, rel=0.01)
    assert report.disk_angle_mrad == pytest.approx(10 * 0.55, rel=0.05)
    assert "strain:" in report.summary() and report.to_dict()["max_angle_mrad"] > 20
    no_angles = dataset_report(analyse(data, beam=estimate_beam(data)))
    assert no_angles.max_angle_mrad is None and "angles unknown" in " ".join(
        no_angles.verdicts["strain"][1]
    )


def test_saturation_count():
    assert saturation_count(np.uint8) == 255 and saturation_count(np.uint16) == 65535
    assert saturation_count(np.float32) is None and saturation_count(np.uint32, 4095) == 4095
