"""The pass kernel's float32 filtering: its rounding error stays within float32's rounding
of each value's share, on a large detector, whatever the shadow magnification."""

import numpy as np
import pytest

from napari_emcal.overfocus import TwinParams, compute
from napari_emcal.overfocus.kernels import SINGLE_DTYPES

#: float32's unit roundoff
UNIT = 2.0**-24


def _twin(k: float, shape) -> TwinParams:
    scan_pixel_size, camera_length, detector_pixel_size = 1e-9, 0.15, 55e-6
    return TwinParams(
        overfocus=k * camera_length * scan_pixel_size / (detector_pixel_size - k * scan_pixel_size),
        scan_pixel_size=scan_pixel_size,
        camera_length=camera_length,
        detector_pixel_size=detector_pixel_size,
        cy=shape[2] / 2 - 0.3,
        cx=shape[3] / 2 + 0.2,
        scan_rotation=-27.0,
    )


@pytest.mark.parametrize("k", [0.4, 1.5])
def test_float32_frames_on_a_256_detector_are_within_float32_rounding(k):
    """float32 frames of a 256² detector (filtered in float32, added in float64) against
    the same values as float64 (filtered and added in float64): every scan pixel of
    ``shifted_sum`` within 4 units of float32 rounding of its total (each share is rounded
    at most three times: its weight, the product and the filter's sum), ``sum`` and
    ``aperture_sum`` within 8 (partial sums of eight frames). Accumulating whole scan rows
    or the whole pass in float32 would miss this by far: each scan pixel adds up some
    10⁵ shares here."""
    shape = (12, 40, 256, 256)
    rng = np.random.default_rng(3)
    # a dark level and counts with fractions, as dark-subtracted, gain-corrected frames
    data = (500 + rng.gamma(2.0, 40.0, size=shape)).astype(np.float32)
    params = _twin(k, shape)
    single = compute(data, params, outputs=("shifted_sum", "aperture_sum", "sum"))
    double = compute(
        data.astype(np.float64), params, outputs=("shifted_sum", "aperture_sum", "sum")
    )
    assert np.dtype(np.float32) in SINGLE_DTYPES
    assert double["shifted_sum"].min() > 0  # every scan pixel is reached: the bound is relative
    error = np.abs(single["shifted_sum"] - double["shifted_sum"]) / double["shifted_sum"]
    assert error.max() <= 4 * UNIT
    # and the rounding is not one-sided: it averages out
    assert (
        abs(np.mean((single["shifted_sum"] - double["shifted_sum"]) / double["shifted_sum"])) < UNIT
    )
    for name in ("aperture_sum", "sum"):
        scale = np.abs(double[name]).max()
        assert np.abs(single[name] - double[name]).max() <= 8 * UNIT * scale, name


@pytest.mark.parametrize("dtype", [np.uint16, np.float64])
def test_a_small_bright_field_disk_on_a_large_detector_matches_the_definition(dtype):
    """Tiles of pixels outside the disk add to the aperture sum only; both sums equal the
    definition, in both the float32 and the float64 filter."""
    from napari_emcal.overfocus.kernels import make_plan, splat_frames

    from .test_images import _naive_splat

    rng = np.random.default_rng(11)
    scan, det = (5, 37), (40, 44)
    data = (rng.random(scan + det) * 1000).astype(dtype)
    params = _twin(0.4, scan + det).replace(cy=21.3, cx=19.6, semiconv=2.2e-3)
    plan = make_plan(params, scan, det)
    assert 0 < plan.keep.sum() < plan.keep.size / 10
    n_det = det[0] * det[1]
    flat = np.ascontiguousarray(data.reshape(-1, n_det))
    sy, sx = np.divmod(np.arange(len(flat)), scan[1])
    shifted, aperture = np.zeros((2, plan.padded_size)), np.zeros((2, n_det))
    splat_frames(flat, sy, sx, plan, shifted, aperture)
    expected = _naive_splat(data, params)
    np.testing.assert_allclose(plan.crop(shifted.sum(axis=0)), expected, rtol=4 * UNIT)
    np.testing.assert_allclose(aperture.sum(axis=0), flat.sum(axis=0, dtype=float), rtol=1e-12)
