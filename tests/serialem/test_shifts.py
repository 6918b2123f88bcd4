"""Shift matrices from simulated series with known matrices, drift and noise."""

import numpy as np
import pytest

from napari_emcal.errors import CalibrationFailedError, InvalidDataError
from napari_emcal.serialem import (
    high_defocus_image_shift,
    image_shift_matrix,
    measure_shift,
    read_series,
    scale_rotation,
    stage_shift_matrix,
)
from napari_emcal.serialem import simulate as sim


def _check(fit, truth):
    truth = np.asarray(truth)
    error = np.abs(fit.matrix - truth)
    norm = np.linalg.norm(truth)
    assert error.max() < 0.003 * norm, (fit.matrix, truth)
    assert (error <= 3 * fit.sigma).all(), (error, fit.sigma)
    # the standard errors are no blanket: below 0.3 % of the norm too
    assert fit.sigma.max() < 0.003 * norm


@pytest.mark.parametrize(
    ("binning", "angle", "scale", "seed"),
    [(1, 37.0, 260.0, 11), (2, -143.0, 180.0, 12), (2, 95.0, 320.0, 13)],
)
def test_image_shift_matrix_with_drift(tmp_path, binning, angle, scale, seed):
    truth = sim.rotation_matrix(scale, angle, skew=0.04)
    series = sim.simulate_series(truth, binning=binning, seed=seed, step=0.3 / binning**0.5)
    path = sim.write_series(series, tmp_path / "IS.mrc")
    read = read_series(path)
    assert read.row_is_camera_y is True  # an MRC stack: rows along camera y
    fit = image_shift_matrix(read.records)
    _check(fit, truth)
    # the drift was there and was removed
    assert np.abs(fit.drift).max() > 3.0
    assert fit.residuals.max() < 0.5
    assert fit.drift_axis == "s"


def test_stage_matrix_averages_a_periodic_stage_error(tmp_path):
    out = list(np.arange(7) * 1.2)
    path_x = out + out[-2::-1]
    moves = [(x, 0.0) for x in path_x] + [(0.0, y) for y in out[1:] + out[-2::-1]]
    truth = sim.rotation_matrix(60.0, 121.0, skew=-0.02)  # px per µm
    series = sim.simulate_series(
        truth,
        setting="stage",
        moves=moves,
        seed=5,
        stage_error_um=0.02,
        stage_error_period_um=1.0,
    )
    fit = stage_shift_matrix(read_series(sim.write_series(series, tmp_path / "S.mrc")).records)
    _check(fit, truth)


def test_periodic_specimen_needs_the_prior(tmp_path):
    truth = sim.rotation_matrix(240.0, 20.0)
    series = sim.simulate_series(truth, periodic=23.0, seed=3, step=0.25)
    records = read_series(sim.write_series(series, tmp_path / "P.mrc")).records
    with pytest.raises(CalibrationFailedError, match="periodic|ambiguous"):
        image_shift_matrix(records)
    prior = truth @ np.array([[1.04, 0.02], [-0.03, 0.97]])  # an older calibration
    fit = image_shift_matrix(records, prior=prior, search_radius=8)
    # the right lattice peak: a neighbour would be 23 px / 60 px off (40 %); a lattice's
    # sub-pixel peak is less sharp than a random specimen's, and the errors say so
    error = np.abs(fit.matrix - truth)
    assert error.max() < 0.02 * np.linalg.norm(truth)
    assert (error <= 3 * fit.sigma).all()


def test_high_defocus_image_shift(tmp_path):
    focus = sim.rotation_matrix(250.0, 63.0, skew=0.02)
    scale, rotation = 1.083, 4.2
    a = np.radians(rotation)
    ratio = scale * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    defocused = ratio @ focus
    fits = []
    for k, matrix in enumerate((focus, defocused)):
        series = sim.simulate_series(matrix, seed=30 + k, defocus_um=-100.0 * k)
        fits.append(
            image_shift_matrix(read_series(sim.write_series(series, tmp_path / f"{k}.mrc")).records)
        )
    result = high_defocus_image_shift(*fits, focus_defocus_um=0.0, defocus_um=-100.0)
    assert result.scale == pytest.approx(scale, rel=0.002)
    assert result.rotation_deg == pytest.approx(rotation, abs=0.1)
    assert abs(result.scale - scale) < 3 * result.scale_sigma + 1e-4
    assert scale_rotation(ratio) == pytest.approx((scale, rotation))


def test_measure_shift_sub_pixel():
    rng = np.random.default_rng(2)
    particles = sim.specimen(rng, 700)
    reference = sim._render(particles, (200, 200), (0.0, 0.0), 1)
    moved = sim._render(particles, (200, 200), (31.37, -12.82), 1)
    drow, dcol, height = measure_shift(reference, moved)
    assert (dcol, drow) == pytest.approx((31.37, -12.82), abs=0.03)
    assert height > 0.3


def _records(tmp_path, **kw):
    series = sim.simulate_series(sim.rotation_matrix(200.0, 10.0), seed=1, shape=(96, 96), **kw)
    return series


def test_refuses_a_series_without_image_shifts(tmp_path):
    series = _records(tmp_path, step=0.0)
    records = read_series(sim.write_series(series, tmp_path / "N.mrc")).records
    with pytest.raises(CalibrationFailedError, match="never changes"):
        image_shift_matrix(records)
    for r in records:
        r.image_shift = None
    with pytest.raises(InvalidDataError, match="ImageShift"):
        image_shift_matrix(records)


def test_refuses_blank_images_and_one_record(tmp_path):
    series = _records(tmp_path)
    series.images[:] = 100.0
    records = read_series(sim.write_series(series, tmp_path / "B.mrc")).records
    with pytest.raises(CalibrationFailedError, match="blank"):
        image_shift_matrix(records)
    with pytest.raises(InvalidDataError, match="1 record"):
        image_shift_matrix(records[:1])


def test_refuses_unrelated_images(tmp_path):
    series = _records(tmp_path)
    rng = np.random.default_rng(9)
    series.images[:] = rng.poisson(100.0, series.images.shape)  # noise, no specimen
    records = read_series(sim.write_series(series, tmp_path / "U.mrc")).records
    with pytest.raises(CalibrationFailedError, match="noise"):
        image_shift_matrix(records)
    # with a prior too: no peak near the prediction stands out
    with pytest.raises(CalibrationFailedError, match="noise"):
        image_shift_matrix(records, prior=sim.rotation_matrix(200.0, 10.0))


def test_low_dose_series_still_measured(tmp_path):
    truth = sim.rotation_matrix(200.0, -120.0)
    series = sim.simulate_series(truth, seed=14, counts=5.0)
    fit = image_shift_matrix(read_series(sim.write_series(series, tmp_path / "L.mrc")).records)
    # five counts per pixel: less precise, and the standard errors say so
    error = np.abs(fit.matrix - truth)
    assert error.max() < 0.01 * np.linalg.norm(truth) and (error <= 3 * fit.sigma).all()


def test_whole_second_times_fall_back_to_record_order(tmp_path):
    truth = sim.rotation_matrix(200.0, 75.0)
    series = sim.simulate_series(truth, seed=6, drift_px_per_s=(0.2, 0.1), drift_curvature=0.0)
    for section in series.sections:
        section["TimeStamp"] = float(int(section["TimeStamp"]))
    fit = image_shift_matrix(read_series(sim.write_series(series, tmp_path / "W.mrc")).records)
    assert fit.drift_axis == "record"
    assert any("record order" in note for note in fit.notes)
    assert any("drifted" in note for note in fit.notes)
    error = np.abs(fit.matrix - truth)
    assert error.max() < 0.003 * np.linalg.norm(truth) and (error <= 3 * fit.sigma).all()
