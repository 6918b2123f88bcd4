import dask.array as da
import numpy as np
import pytest

from napari_emcal.errors import Cancelled, InvalidParameterError
from napari_emcal.overfocus import TwinParams
from napari_emcal.overfocus.preview import reduce_data, reduce_params


@pytest.fixture
def data():
    return np.random.default_rng(1).poisson(3.0, (9, 7, 10, 11)).astype(np.uint16)


def test_reduce_data_sums_bins_and_keeps_every_nth_position(data):
    out = reduce_data(data, detector_bin=3, scan_stride=2)
    assert out.shape == (5, 4, 3, 3) and out.dtype == np.float32
    # hand-computed: frame (2, 3) of the reduced scan is frame (4, 6); bin (1, 2) sums
    # detector rows 3..5 and columns 6..8
    assert out[2, 3, 1, 2] == data[4, 6, 3:6, 6:9].sum()
    expected = data[::2, ::2, :9, :9].reshape(5, 4, 3, 3, 3, 3).sum(axis=(3, 5))
    np.testing.assert_array_equal(out, expected)


def test_reduce_data_lazy_equals_numpy_and_reports_progress(data):
    lazy = da.from_array(data, chunks=(2, 3, 10, 11))
    fractions = []
    out = reduce_data(lazy, 2, 3, progress=fractions.append)
    np.testing.assert_array_equal(out, reduce_data(data, 2, 3))
    assert len(fractions) > 1 and fractions == sorted(fractions) and fractions[-1] == 1.0


def test_reduce_data_can_be_cancelled(data):
    lazy = da.from_array(data, chunks=(1, 7, 10, 11))
    calls = []

    def stop(fraction):
        calls.append(fraction)
        raise Cancelled

    with pytest.raises(Cancelled):
        reduce_data(lazy, 1, 1, progress=stop)
    assert len(calls) == 1


def test_bad_factors_are_refused(data):
    with pytest.raises(InvalidParameterError, match="whole number"):
        reduce_data(data, 1.5)
    with pytest.raises(InvalidParameterError, match="larger than the detector"):
        reduce_data(data, 12)


def test_reduced_twin_is_the_same_instrument():
    p = TwinParams(
        overfocus=1e-6,
        scan_pixel_size=1e-9,
        camera_length=0.15,
        detector_pixel_size=55e-6,
        cy=31.5,
        cx=31.5,
        scan_rotation=10.0,
    )
    r = reduce_params(p, detector_bin=4, scan_stride=2)
    assert r.detector_pixel_size == pytest.approx(220e-6)
    assert (r.cy, r.cx) == (pytest.approx(7.5), pytest.approx(7.5))  # centre of 16 px
    assert r.scan_pixel_size == pytest.approx(2e-9)
    # binned pixel (8.5, 7.5) covers original pixels 34..37 x 30..33: the same specimen
    # point, in scan pixels twice as large
    np.testing.assert_allclose(
        2 * r.detector_to_specimen([8.5, 7.5], [0, 0]), p.detector_to_specimen([35.5, 31.5], [0, 0])
    )


def test_reduced_twin_keeps_the_descan():
    from napari_emcal.errors import InvalidParameterError
    from napari_emcal.overfocus import TwinParams, compute, simulate
    from napari_emcal.specimens import detailed_specimen

    p = TwinParams(
        overfocus=1e-6,
        scan_pixel_size=1e-9,
        camera_length=0.15,
        detector_pixel_size=55e-6,
        cy=31.5,
        cx=30.5,
        scan_rotation=10.0,
        semiconv=10e-3,
        descan=((0.12, -0.05), (0.04, 0.1)),
    )
    with pytest.raises(InvalidParameterError, match="scan_shape"):
        reduce_params(p, 2, 3)
    scan = (47, 40)  # a stride that divides neither axis
    r = reduce_params(p, detector_bin=2, scan_stride=3, scan_shape=scan)
    np.testing.assert_allclose(r.descan_matrix, p.descan_matrix * 3 / 2)
    # the beam in the reduced data is where it is in the frames kept
    reduced_shape = (16, 14)
    for s in ([0, 0], [15, 13], [7, 4]):
        full = p.centre_at(3 * np.array(s), scan)
        np.testing.assert_allclose(r.centre_at(s, reduced_shape), (full - 0.5) / 2, atol=1e-12)
    # and the reduced pass shows the same as the full one, sampled coarser
    data = simulate(detailed_specimen((140, 140), seed=2), scan, (64, 64), p)
    small = reduce_data(data, 2, 3)
    assert small.shape[:2] == reduced_shape
    coarse = compute(small, r, outputs=["shifted_sum"])["shifted_sum"]
    fine = compute(data, p, outputs=["shifted_sum"])["shifted_sum"][::3, ::3]
    inner = (slice(4, -4), slice(4, -4))
    assert np.corrcoef(coarse[inner].ravel(), fine[inner].ravel())[0, 1] > 0.8
