import h5py
import numpy as np
import pytest

from napari_emcal.errors import InvalidDataError
from napari_emcal.io.readers import guess_scan_shape, open_4d, sample_contrast_limits
from tests.conftest import real_file


def test_npy_opens_lazily_memory_mapped(tmp_path):
    data = np.arange(6 * 5 * 8 * 8, dtype=">u2").reshape(6, 5, 8, 8)
    path = tmp_path / "scan.npy"
    np.save(path, data)
    ds = open_4d(path)
    assert ds.data.shape == (6, 5, 8, 8)
    assert ds.data.chunksize[2:] == (8, 8)  # whole frames per chunk
    np.testing.assert_array_equal(ds.data.compute(), data)


def test_opening_does_not_read_pixel_data(tmp_path, monkeypatch):
    """A 3 GB sparse file opens instantly: nothing reads it whole."""
    path = tmp_path / "big.npy"
    big = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint16, shape=(128, 128, 256, 384))
    del big
    reads = []
    import dask.array as da

    original = da.core.Array.compute
    monkeypatch.setattr(
        da.core.Array,
        "compute",
        lambda self, **kw: reads.append(self.shape) or original(self, **kw),
    )
    ds = open_4d(path)
    assert ds.data.shape == (128, 128, 256, 384)
    assert reads == []
    lo, hi = sample_contrast_limits(ds.data)  # reads 8 frames only
    assert (lo, hi) == (0.0, 1.0)


def test_hdf5_largest_dataset_and_choice(tmp_path):
    path = tmp_path / "stack.h5"
    with h5py.File(path, "w") as f:
        f["a/small"] = np.zeros((2, 2, 4, 4), np.float32)
        f["b/frames"] = np.ones((12, 16, 16), np.uint16)  # flat stack: scan guessed
        f["c/image"] = np.zeros((16, 16))
    ds = open_4d(path)
    assert ds.data.shape == (3, 4, 16, 16)
    assert ds.metadata["scan_shape_guessed"]
    assert any("several" in n for n in ds.notes) and any("scan shape" in n for n in ds.notes)
    assert ds.metadata["datasets"] == ["a/small", "b/frames"]
    ds = open_4d(path, dataset="a/small")
    assert ds.data.shape == (2, 2, 4, 4)
    ds = open_4d(path, scan_shape=(2, 6))
    assert ds.data.shape == (2, 6, 16, 16)


def test_empad_xml_and_raw(tmp_path):
    """EMPAD: 128 x 130 float32 frames (two footer rows dropped); scan size in the name."""
    frames = np.random.default_rng(0).random((3, 4, 130, 128)).astype("<f4")
    frames.tofile(tmp_path / "scan_x4_y3.raw")
    (tmp_path / "acq.xml").write_text(
        '<?xml version="1.0"?><root><raw_file filename="scan_x4_y3.raw"/>'
        '<iom_measurements><full_scan_field_of_view x="2e-08" scale_factor="0.72"/>'
        "</iom_measurements></root>"
    )
    ds = open_4d(tmp_path / "acq.xml")
    assert ds.data.shape == (3, 4, 128, 128) and ds.data.dtype == np.float32
    assert ds.data.chunksize[2:] == (128, 128)
    assert not ds.metadata["scan_shape_guessed"]
    # field of view 20 nm / 0.72 over the 4 positions of the longer scan axis
    assert ds.metadata["scan_step"] == pytest.approx([20e-9 / 0.72 / 4] * 2)
    np.testing.assert_array_equal(ds.data[1, 2].compute(), frames[1, 2, :128])


def test_zarr_directory(tmp_path):
    import dask.array as da

    data = np.random.default_rng(0).integers(0, 1000, (5, 6, 12, 10)).astype(np.uint16)
    da.from_array(data, chunks=(2, 3, 12, 10)).to_zarr(str(tmp_path / "scan.zarr"))
    ds = open_4d(tmp_path / "scan.zarr")
    assert ds.metadata["format"] == "zarr" and ds.data.shape == data.shape
    assert ds.data.chunksize == (2, 3, 12, 10)  # the store's own chunks, whole frames
    np.testing.assert_array_equal(ds.data.compute(), data)
    flat = tmp_path / "flat.zarr"
    da.from_array(data.reshape(30, 12, 10), chunks=(7, 12, 10)).to_zarr(str(flat))
    ds = open_4d(flat)
    assert ds.data.shape == (5, 6, 12, 10) and ds.metadata["scan_shape_guessed"]


def test_hdf5_without_3d_or_4d_data_is_refused(tmp_path):
    path = tmp_path / "flat.h5"
    with h5py.File(path, "w") as f:
        f["image"] = np.zeros((16, 16))
    with pytest.raises(InvalidDataError, match="no 3D or 4D"):
        open_4d(path)


def test_bad_files(tmp_path):
    with pytest.raises(InvalidDataError, match="No such file"):
        open_4d(tmp_path / "missing.npy")
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(InvalidDataError, match="not a 4D STEM format"):
        open_4d(tmp_path / "x.txt")
    (tmp_path / "broken.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(InvalidDataError, match="cannot read .*broken.npy as a .npy array"):
        open_4d(tmp_path / "broken.npy")
    with pytest.raises(InvalidDataError, match="product must be"):
        np.save(tmp_path / "ok.npy", np.zeros((2, 3, 4, 4)))
        open_4d(tmp_path / "ok.npy", scan_shape=(4, 4))


def test_truncated_mib_is_refused(tmp_path):
    src = real_file("4d/merlin_4x2/001_4x2_6bit.mib")
    raw = src.read_bytes()
    (tmp_path / "cut.mib").write_bytes(raw[: len(raw) // 3 + 100])
    (tmp_path / "cut.hdr").write_bytes(src.with_suffix(".hdr").read_bytes())
    with pytest.raises(InvalidDataError, match="truncated: cut.hdr announces 8 frames"):
        open_4d(tmp_path / "cut.mib")


def test_guess_scan_shape():
    assert guess_scan_shape(16) == (4, 4)
    assert guess_scan_shape(12) == (3, 4)
    assert guess_scan_shape(7) == (1, 7)


def test_real_merlin_mib():
    ds = open_4d(real_file("4d/merlin_4x2/001_4x2_6bit.mib"))
    assert ds.data.shape[2:] == (256, 256) and ds.data.dtype == np.uint8
    assert int(np.prod(ds.data.shape[:2])) == 8
    assert ds.metadata["scan_shape_guessed"] and ds.notes
    assert ds.metadata["dwell_time"] == pytest.approx(0.1)
    assert open_4d(real_file("4d/merlin_4x2/001_4x2_6bit.hdr")).data.shape == ds.data.shape


def test_real_blockfile():
    ds = open_4d(real_file("4d/blockfile/test1.blo"))
    assert ds.data.shape == (3, 2, 144, 144)
    assert ds.metadata["scan_step"] == pytest.approx([12.8e-9, 12.8e-9])


def test_real_arina_master_with_linked_data():
    ds = open_4d(real_file("4d/arina/test_00_master.h5"))
    assert ds.data.shape == (4, 4, 192, 192)
    assert ds.metadata["detector_pixel_size"] == pytest.approx([100e-6, 100e-6])
    assert ds.metadata["beam_energy"] == pytest.approx(300e3)
    assert ds.metadata["dwell_time"] == pytest.approx(99.6e-6, rel=1e-3)
    assert int(ds.data.sum().compute()) == 0  # the file's pixel data are all zero


def test_real_fpd_hdf5():
    ds = open_4d(real_file("4d/fpd_hdf5/FPD_HDF5.hdf5"))
    assert ds.data.shape == (16, 16, 256, 256)
    assert ds.data.dtype == np.dtype(">u2")
    assert ds.metadata["dataset"] == "fpd_expt/fpd_data/data"


def test_merlin_frames_as_the_detector_reads_them_out():
    """The same orientation as LiberTEM's reader and a live stream (RosettaSciIO turns
    Merlin frames upside down): the hot pixel the file's name gives is at row 39."""
    ds = open_4d(
        real_file("4d/merlin_no_beam/003_merlin_test_roi_sig256x64_nav4x2_hot_pixel_52x_39y.mib")
    )
    total = np.asarray(ds.data).reshape(-1, *ds.data.shape[-2:]).sum(axis=0)
    assert np.unravel_index(np.argmax(total), total.shape) == (39, 52)
