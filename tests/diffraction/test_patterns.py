import dask.array as da
import numpy as np
import pytest

from napari_emcal.diffraction.patterns import reduce_frames
from napari_emcal.errors import InvalidDataError, InvalidParameterError


def test_mean_and_max_over_leading_axes():
    data = np.arange(2 * 3 * 4 * 5, dtype=np.uint16).reshape(2, 3, 4, 5)
    assert np.allclose(reduce_frames(data), data.mean(axis=(0, 1)))
    lazy = da.from_array(data, chunks=(1, 3, 4, 5))
    assert np.allclose(reduce_frames(lazy, "max"), data.max(axis=(0, 1)))
    assert reduce_frames(data[0, 0]).shape == (4, 5)
    with pytest.raises(InvalidParameterError):
        reduce_frames(data, "median")
    with pytest.raises(InvalidDataError):
        reduce_frames(np.zeros(5))
