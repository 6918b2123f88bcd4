"""2D image reader and magnification lookup (real files skip when absent)."""

import numpy as np
import pytest

from napari_emcal.errors import InvalidDataError
from napari_emcal.io.images import find_magnification, open_image
from tests.conftest import real_file


def test_npy_and_tiff_round_trip(tmp_path):
    import tifffile

    image = np.arange(64 * 48, dtype=np.uint16).reshape(64, 48)
    np.save(tmp_path / "a.npy", image)
    tifffile.imwrite(tmp_path / "a.tif", image)
    for name in ("a.npy", "a.tif"):
        data, metadata = open_image(tmp_path / name)
        np.testing.assert_array_equal(data, image)
        assert metadata["source"].endswith(name)


def test_bad_files_raise_invalid_data(tmp_path):
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(InvalidDataError, match="unknown image format"):
        open_image(tmp_path / "x.txt")
    (tmp_path / "broken.tif").write_bytes(b"II*\x00garbage")
    with pytest.raises(InvalidDataError, match="broken.tif"):
        open_image(tmp_path / "broken.tif")
    np.save(tmp_path / "line.npy", np.zeros(10))
    with pytest.raises(InvalidDataError, match="2D"):
        open_image(tmp_path / "line.npy")


def test_find_magnification_in_nested_metadata():
    assert find_magnification({"emcal": {"magnification": 3600}}) == 3600
    assert find_magnification({"a": [{"Indicated Magnification": "25000"}]}) == 25000
    assert (
        find_magnification(
            {"CustomProperties": {"StemMagnification": {"type": "double", "value": "225000"}}}
        )
        == 225000
    )
    assert find_magnification({"magnification": "n/a", "other": 1}) is None


def test_real_tvips_tiff():
    image, metadata = open_image(real_file("images/tvips/TVIPS_bin4.tif"))
    assert image.shape == (1024, 1024)
    assert metadata["pixel_size_nm"] == pytest.approx(1.4208, rel=1e-3)
    assert metadata["magnification"] == 32000  # TemMagnification, not the camera's


def test_real_velox_emd():
    image, metadata = open_image(real_file("images/velox_emd/test_si_16x16_215kx.emd"))
    assert image.shape == (16, 16)
    assert metadata["pixel_size_nm"] == pytest.approx(3.599, rel=1e-3)
    assert metadata["magnification"] == 225000
