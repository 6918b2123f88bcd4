"""The dataset report on the real instrument files (skipped where they are absent)."""

import numpy as np
import pytest

from napari_emcal.dataset_check.report import check_dataset
from napari_emcal.io.readers import open_4d
from tests.conftest import real_file


def report_of(relative, **kwargs):
    dataset = open_4d(real_file(relative))
    return check_dataset(dataset.data, dataset.metadata, **kwargs)[1]


def test_fpd_hdf5_is_a_centred_clean_dataset():
    report = report_of("4d/fpd_hdf5/FPD_HDF5.hdf5")
    assert report.beam.cy == pytest.approx(125.3, abs=0.5)
    assert report.beam.cx == pytest.approx(127.3, abs=0.5)
    assert report.edge_fraction == 0 and report.saturated_fraction == 0
    assert report.descan.shift_across_scan < 1.0
    assert report.verdicts["CoM/DPC"][0] == "suitable"


def test_merlin_disk_cut_by_the_edge_and_6_bit_saturation():
    report = report_of("4d/merlin_4x2/001_4x2_6bit.mib", max_count=63)
    assert report.edge_fraction == 1.0  # the large disk is cut by the left edge
    assert report.saturated_fraction > 0.01
    assert report.verdicts["ptychography"][0] == "not suitable"


def test_blockfile_saturates_uint8():
    report = report_of("4d/blockfile/test1.blo")
    assert report.saturated_fraction > 0 and report.edge_fraction == 0
    assert report.verdicts["CoM/DPC"][0] == "not suitable"


def test_arina_test_file_without_signal():
    report = report_of("4d/arina/test_00_master.h5")
    assert report.beam is None
    assert all(level == "not suitable" for level, _ in report.verdicts.values())
    assert any("no bright-field disk" in note for note in report.notes)


def test_merlin_file_without_a_beam_has_no_disk_and_nothing_suitable():
    report = report_of(
        "4d/merlin_no_beam/003_merlin_test_roi_sig256x64_nav4x2_hot_pixel_52x_39y.mib"
    )
    assert report.beam is None
    assert all(verdict == "not suitable" for verdict, _ in report.verdicts.values())


@pytest.fixture(scope="module")
def fpd():
    """The FPD recording and its check (read once for the descan tests)."""
    dataset = open_4d(real_file("4d/fpd_hdf5/FPD_HDF5.hdf5"))
    return (dataset, *check_dataset(dataset.data, dataset.metadata))


def test_fpd_descan_fit_with_an_uncertainty_that_holds_across_the_scan(fpd):
    """The FPD recording's disk hardly walks (under half a pixel across its 16 x 16 scan);
    its centres scatter about the plane by the specimen's deflection, correlated across
    the scan, so the fit's errors allow for it: fits of either half of the scan agree
    with each other within them (least squares' own errors, 3-5x smaller, would be
    broken by 5σ)."""
    from napari_emcal.dataset_check.analysis import fit_beam_walk

    _, result, report = fpd
    fit = report.descan
    assert fit.shift_across_scan < 1.0 and fit.frames == 256
    sigma = np.asarray(fit.matrix_sigma)
    assert (sigma > 2e-3).all() and (sigma < 0.05).all()  # px per scan px
    assert 0.02 < report.walk["CoM/DPC"].walk_px < 0.5  # px at the scan corners
    assert result.com_follows_beam and not result.images_follow_beam
    yy, xx = np.indices(result.disk_cy.shape)
    for half in (xx < 8, yy < 8):
        parts = [
            fit_beam_walk(np.where(m, result.disk_cy, np.nan), np.where(m, result.disk_cx, np.nan))
            for m in (half, ~half)
        ]
        combined = np.hypot(parts[0].matrix_sigma, parts[1].matrix_sigma)
        assert (np.abs(parts[0].matrix - parts[1].matrix) < 3 * combined).all()


def test_fpd_check_and_twin_agree_on_the_descan(fpd):
    """The check (windowed centre of mass of the disk in every frame) and the overfocus
    twin's own descan fit (the disk's edge in every frame, ``estimate_descan``) measure
    the walk independently and fit it through the shared plane fit: their descan matrices
    agree within 3 combined standard errors. Their beam centres are different
    definitions on this small, uneven disk (intensity centre against edge midpoints:
    0.5 px apart in y), so only the descan is compared strictly."""
    from napari_emcal.overfocus.calibrate import estimate_descan

    dataset, _, report = fpd
    check, twin = report.descan, estimate_descan(dataset.data)
    combined = np.hypot(check.matrix_sigma, twin.matrix_sigma)
    assert (np.abs(check.matrix - twin.matrix) < 3 * combined).all(), (check, twin)
    assert combined.max() < 0.03  # px per scan px: a comparison that can fail
    assert np.hypot(*np.subtract(check.centre, twin.centre)) < 1.0
