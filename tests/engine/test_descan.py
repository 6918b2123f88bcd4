"""The shared descan module: the plane fit with standard errors, per-frame compensation,
and any pass run on compensated frames."""

import numpy as np
import pytest

from napari_emcal.engine import Buffer, FramePass, run_local
from napari_emcal.engine.descan import (
    DescanCompensated,
    check_descan,
    compensate_frames,
    compensated,
    descan_shifts,
    fit_descan,
    scan_centre,
)
from napari_emcal.errors import CalibrationFailedError, InvalidParameterError

D = np.array([[0.12, -0.05], [0.03, 0.09]])


def test_fit_recovers_plane_and_its_errors_cover_the_truth():
    rng = np.random.default_rng(1)
    shape = (24, 20)
    yy, xx = np.mgrid[: shape[0], : shape[1]].astype(float)
    centre = np.array([31.2, 29.7])
    s = np.stack([yy, xx]) - scan_centre(shape)[:, None, None]
    true = centre[:, None, None] + np.einsum("ij,jyx->iyx", D, s)
    misses = []
    for _ in range(40):
        noisy = true + rng.normal(0, 0.3, true.shape)
        fit = fit_descan(noisy[0], noisy[1])
        misses.append((fit.matrix - D) / fit.matrix_sigma)
        np.testing.assert_allclose(fit.centre, centre, atol=5 * max(fit.centre_sigma))
    misses = np.array(misses)
    # honest standard errors: the normalised misses have unit spread, none beyond 4σ
    assert 0.7 < misses.std() < 1.3
    assert np.abs(misses).max() < 4.5
    # the expected σ: 0.3 / sqrt(sum (s - mean)²)
    expected = 0.3 / np.sqrt(((yy - yy.mean()) ** 2).sum())
    assert fit.matrix_sigma[0, 0] == pytest.approx(expected, rel=0.3)


def test_fit_refuses_too_few_or_collinear_frames():
    cy = np.full((5, 5), np.nan)
    cx = cy.copy()
    cy[0, :2] = cx[0, :2] = 1.0
    with pytest.raises(CalibrationFailedError):
        fit_descan(cy, cx)
    cy[0, :] = cx[0, :] = np.arange(5.0)
    with pytest.raises(CalibrationFailedError, match="line"):
        fit_descan(cy, cx)


def test_descan_is_reexported_by_the_dataset_check():
    from napari_emcal.dataset_check import Descan
    from napari_emcal.dataset_check import fit_descan as check_fit
    from napari_emcal.engine import descan

    assert Descan is descan.Descan and check_fit is descan.fit_descan


@pytest.mark.parametrize("bad", [[[0, 0]], [[0, np.nan], [0, 0]], [[2.0, 0], [0, 0]], "x"])
def test_check_descan_refuses(bad):
    with pytest.raises(InvalidParameterError):
        check_descan(bad)


def test_compensation_moves_the_beam_back():
    # a bright square at (10 + shift) comes back to 10; integer shifts are exact
    frames = np.zeros((3, 32, 32), np.uint16)
    shifts = np.array([[0.0, 0.0], [2.0, -3.0], [1.5, 0.25]])
    for i, (dy, dx) in enumerate(shifts[:2]):
        frames[i, 10 + int(dy) : 14 + int(dy), 10 + int(dx) : 14 + int(dx)] = 100
    yy, xx = np.mgrid[:32, :32].astype(float)
    frames[2] = np.round(1000 * np.exp(-((yy - 12 - 1.5) ** 2 + (xx - 20.25) ** 2) / 8))
    out = compensate_frames(frames, shifts)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out[0], frames[0])
    np.testing.assert_array_equal(out[1], frames[0])
    com = [(out[2] * g).sum() / out[2].sum() for g in (yy, xx)]
    np.testing.assert_allclose(com, [12, 20], atol=0.02)
    # what comes from outside the detector is 0
    edge = compensate_frames(np.ones((1, 8, 8)), [[3.0, 0.0]])
    assert edge[0, -3:].sum() == 0 and edge[0, :-3].min() == 1


class _Sum(FramePass):
    """The sum of all frames and each frame's CoM row: a pass that knows no descan."""

    def buffers(self, scan_shape, detector_shape):
        return {"sum": Buffer("sig"), "com": Buffer("nav", (2,))}

    def process(self, buffers, frames, scan_y, scan_x, task):
        yy, xx = np.mgrid[: frames.shape[1], : frames.shape[2]]
        total = frames.sum(axis=(1, 2))
        buffers["com"][:] = np.stack(
            [(frames * yy).sum(axis=(1, 2)) / total, (frames * xx).sum(axis=(1, 2)) / total], -1
        )
        buffers["sum"][:] += frames.sum(axis=0)

    def finish(self, buffers, scan_shape, detector_shape, task):
        return buffers["com"], buffers["sum"]


def test_any_pass_follows_the_beam():
    scan, det = (9, 7), (40, 40)
    yy, xx = np.mgrid[: det[0], : det[1]].astype(float)
    sy, sx = np.mgrid[: scan[0], : scan[1]]
    shifts = descan_shifts(D, sy, sx, scan).reshape(scan + (2,))
    data = np.empty(scan + det)
    for i in range(scan[0]):
        for j in range(scan[1]):
            c = np.array([20.0, 19.0]) + shifts[i, j]
            data[i, j] = np.exp(-((yy - c[0]) ** 2 + (xx - c[1]) ** 2) / 18)
    com, _ = run_local(data, DescanCompensated(_Sum(), D))
    np.testing.assert_allclose(com[..., 0], 20.0, atol=0.02)
    np.testing.assert_allclose(com[..., 1], 19.0, atol=0.02)
    raw, _ = run_local(data, compensated(_Sum(), np.zeros((2, 2))))
    assert np.ptp(raw[..., 0]) > 0.5  # without compensation the beam walks
    inner = _Sum()
    assert compensated(inner, [[0, 0], [0, 0]]) is inner
