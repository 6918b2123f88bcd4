"""The overfocus sample: lazy, by scan row, the twin's mapping, no numba to open it."""

import subprocess
import sys

import numpy as np

from napari_emcal.overfocus.sample import OverfocusSample, overfocus_grating, overfocus_grating_lazy
from napari_emcal.overfocus.simulate import simulate


def test_the_numpy_rows_are_the_twins_mapping_of_simulate():
    sample = OverfocusSample()
    reference = simulate(sample.specimen, sample.scan_shape, sample.detector_shape, sample.truth)
    rows = np.stack([sample.transmission(sy) for sy in range(sample.scan_shape[0])])
    assert np.abs(reference[..., sample.mask] - rows).max() < 1e-6  # float32 rounding
    assert np.all(reference[..., ~sample.mask] == 0)


def test_lazy_and_whole_sample_are_the_same_data_in_any_order():
    data, metadata = overfocus_grating()
    lazy, lazy_metadata, limits = overfocus_grating_lazy()
    assert lazy.shape == data.shape == (48, 48, 64, 64) and lazy.dtype == data.dtype
    assert lazy_metadata == metadata
    fresh = OverfocusSample()  # rows read backwards in another instance
    for sy in (47, 3, 0):
        np.testing.assert_array_equal(fresh.row(sy), data[sy])
    np.testing.assert_array_equal(np.asarray(lazy[5:9, 2]), data[5:9, 2])
    assert not data.flags.writeable
    frame_sums = data.sum(axis=(2, 3), dtype=np.float64)
    # the dose is that of a uniform specimen of the mean transmission: within a few %
    assert abs(frame_sums.mean() / 20000 - 1) < 0.03
    assert np.all(data[..., ~OverfocusSample().mask] == 0)
    assert limits[0] == 0 and np.percentile(data, 99) <= limits[1] < 3 * data.max()


def test_the_napari_sample_opens_without_the_kernels_or_a_whole_pass():
    """napari calls the sample on its GUI thread: it must neither import the overfocus
    kernels (numba compiles them on first use) nor compute every frame."""
    code = (
        "import sys\n"
        "from napari_emcal._napari.contributions import sample_overfocus_grating\n"
        "from napari_emcal.overfocus import sample\n"
        "[(data, kwargs, kind)] = sample_overfocus_grating()\n"
        "assert kind == 'image' and data.shape == (48, 48, 64, 64)\n"
        "assert kwargs['contrast_limits'][1] > 0\n"
        "assert len(sample._sample()._rows) == 0, 'frames computed to open it'\n"
        "data[24, 24].compute()\n"
        "assert len(sample._sample()._rows) == 1\n"
        "loaded = [m for m in sys.modules if m.startswith('napari_emcal.overfocus.')]\n"
        "assert 'napari_emcal.overfocus.kernels' not in loaded, loaded\n"
        "assert 'napari_emcal.overfocus.calibrate' not in loaded, loaded\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
