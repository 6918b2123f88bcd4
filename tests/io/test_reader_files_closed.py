"""A reader that refuses an HDF5 file closes it (no handle left open on any error path)."""

import os
from pathlib import Path

import h5py
import numpy as np
import pytest

from napari_emcal.errors import InvalidDataError
from napari_emcal.io.readers import open_4d

PROC_FD = Path("/proc/self/fd")


def _open_handles(path: Path) -> int:
    count = 0
    for fd in PROC_FD.iterdir():
        try:
            count += Path(os.readlink(fd)) == path.resolve()
        except OSError:
            pass
    return count


@pytest.mark.skipif(not PROC_FD.is_dir(), reason="counts open files through /proc")
@pytest.mark.parametrize(
    "shape, dataset, message",
    [((4, 4, 8, 8), "missing", "no 3D/4D dataset"), ((8, 8), None, "holds no 3D or 4D")],
)
def test_a_refused_hdf5_file_is_closed(tmp_path, shape, dataset, message):
    path = tmp_path / "scan.h5"
    with h5py.File(path, "w") as f:
        f["data"] = np.zeros(shape, np.uint16)
    with pytest.raises(InvalidDataError, match=message) as refused:
        open_4d(path, dataset=dataset)
    # closed although the error's traceback (kept here) still holds the reader's frames
    assert _open_handles(path) == 0 and refused.tb is not None
    ds = open_4d(tmp_path / "scan.h5") if len(shape) == 4 else None
    if ds is not None:  # an opened file stays open for the lazy array
        assert _open_handles(path) == 1
