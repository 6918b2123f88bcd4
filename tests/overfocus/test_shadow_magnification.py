"""Calibration at any shadow magnification, on data whose detector pixels integrate their
footprint on a specimen with detail finer than the scan step (issue 18)."""

import numpy as np
import pytest

from napari_emcal.overfocus import TwinParams, calibrate, simulate, specimen_on_scan_grid
from napari_emcal.overfocus.calibrate import overfocus_for_magnification
from napari_emcal.overfocus.simulate import footprint_kernel
from napari_emcal.specimens import multiscale_specimen

from .splat_definition import splat_into

SCAN = (32, 32)
OVERSAMPLE = 3


def _truth(magnification, detector, rotation, flip):
    base = TwinParams(
        overfocus=np.sign(magnification) * 1e-6,
        scan_pixel_size=1e-9,
        camera_length=0.15,
        detector_pixel_size=55e-6 * 64 / detector,
        cy=(detector - 1) / 2 + 0.3,
        cx=(detector - 1) / 2 - 0.2,
        scan_rotation=rotation,
        flip_y=flip,
        semiconv=12e-3 * 64 / detector * 1.6,  # the disk's edge inside the detector
    )
    return base.replace(overfocus=overfocus_for_magnification(magnification, base))


def _specimen(magnification, detector, seed=0):
    side = int(SCAN[0] + 1.5 * abs(magnification) * detector + 16)
    # detail at a third of a scan step and structures of 8 scan steps
    return multiscale_specimen(
        (OVERSAMPLE * side,) * 2, feature_sizes=(1.0, 8.0 * OVERSAMPLE), seed=seed
    )


def test_footprint_kernel_is_the_pixel_parallelogram():
    params = _truth(1.7, 64, 23.0, True)
    kernel = footprint_kernel(params, oversample=3)
    assert kernel.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(kernel, kernel[::-1, ::-1], atol=1e-12)  # no shift
    # the footprint's area in specimen pixels: |det M| x oversample²
    area = abs(np.linalg.det(params.matrix)) * 9
    assert np.count_nonzero(kernel > 0.5 * kernel.max()) == pytest.approx(area, rel=0.25)


def test_oversampled_point_sample_follows_the_twin():
    """Without integration, detector pixel d at scan s is the specimen at s + M (d - c)."""
    params = _truth(0.5, 32, 10.0, False).replace(semiconv=None, cy=16.0, cx=16.0)
    specimen = _specimen(0.5, 32)
    data = simulate(specimen, SCAN, (32, 32), params, oversample=OVERSAMPLE)
    # the beam centre pixel sees the specimen right under the scan grid
    np.testing.assert_allclose(
        data[:, :, 16, 16], specimen_on_scan_grid(specimen, SCAN, OVERSAMPLE), rtol=1e-6
    )


@pytest.mark.parametrize(
    "magnification, detector, rotation, flip",
    [
        (0.25, 64, 37.0, True),
        (-1.34, 64, -121.0, False),
        (1.9, 64, 83.0, True),
        (-2.5, 48, 160.0, True),
    ],
)
def test_exact_at_any_shadow_magnification(magnification, detector, rotation, flip):
    truth = _truth(magnification, detector, rotation, flip)
    data = simulate(
        _specimen(magnification, detector),
        SCAN,
        (detector, detector),
        truth,
        oversample=OVERSAMPLE,
        integrate=True,
    )
    start = truth.replace(
        scan_rotation=rotation + 50.0, flip_y=not flip, overfocus=truth.overfocus * 1.2
    )
    result = calibrate(data, start)
    p = result.params
    assert p.flip_y == flip
    assert abs((p.scan_rotation - rotation + 180) % 360 - 180) < 0.05
    assert p.overfocus == pytest.approx(truth.overfocus, rel=2e-3)


def _naive_region_images(data, regions, matrix):
    """Each region's pixels splatted (bilinear) at s + M (d - c_r), over its coverage:
    the definition of the sharpened region images, written out loop by loop."""
    sy, sx, dy, dx = data.shape
    out = []
    for (i, j), centroid in zip(regions.grid, regions.centroids):
        total, cover = np.zeros((sy, sx)), np.zeros((sy, sx))
        for py in range(i * regions.size, (i + 1) * regions.size):
            for px in range(j * regions.size, (j + 1) * regions.size):
                o = matrix @ (np.array([py, px]) - centroid)
                for s_y in range(sy):
                    for s_x in range(sx):
                        splat_into(total, data[s_y, s_x, py, px], np.array([s_y, s_x]) + o)
                        splat_into(cover, 1.0, np.array([s_y, s_x]) + o)
        image = total / np.maximum(cover, 1e-3 * cover.max())
        image = image - image.mean()
        out.append(image / image.std())
    return np.array(out)


@pytest.mark.parametrize("buffer_bytes", [1, 2**30])  # one accumulator, or one per thread
def test_sharpened_region_images_follow_their_definition(buffer_bytes, monkeypatch):
    """Every pixel of a region placed at s + M (d - c_r) and divided by the coverage, for
    regions of any size and centroid, with M of either handedness, however many threads
    the memory allows."""
    import sys

    from napari_emcal.overfocus.calibrate.regions import _Regions, _sharp_regions

    module = sys.modules["napari_emcal.overfocus.calibrate.regions"]
    monkeypatch.setattr(module, "SHARP_BUFFER_BYTES", buffer_bytes)

    rng = np.random.default_rng(3)
    data = rng.random((9, 11, 12, 12)).astype(np.float32)
    grid = np.array([(0, 0), (0, 1), (1, 2), (2, 1), (3, 3)])
    size = 3
    centroids = grid * size + 1 + rng.uniform(-0.4, 0.4, (len(grid), 2))  # not the middle
    regions = _Regions(np.zeros((len(grid), 9, 11), np.float32), centroids, grid, size)
    for matrix in (np.array([[1.3, -0.8], [0.7, 1.1]]), np.array([[-2.1, 0.4], [0.5, 1.9]])):
        sharp = _sharp_regions(data, regions, matrix)
        np.testing.assert_allclose(sharp.centroids, centroids)
        np.testing.assert_allclose(
            sharp.images, _naive_region_images(data, regions, matrix), atol=2e-5
        )
