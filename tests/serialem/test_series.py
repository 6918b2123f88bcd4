"""Reading series and SerialEM's own .mdoc files."""

import numpy as np
import pytest

from napari_emcal.errors import InvalidDataError
from napari_emcal.serialem import read_series
from napari_emcal.serialem import simulate as sim
from tests.conftest import real_file


def test_stack_and_mdoc_round_trip(tmp_path):
    series = sim.simulate_series(sim.rotation_matrix(100.0, 5.0), shape=(64, 64), binning=2)
    path = sim.write_series(series, tmp_path / "S.mrc")
    read = read_series(path)
    assert len(read.records) == 9
    first = read.records[0]
    assert first.mag_index == 20 and first.camera == 1 and first.binning == 2
    assert first.spot == 7 and first.probe == "micro"
    np.testing.assert_array_equal(first.image, series.images[0])
    assert read.records[1].image_shift == pytest.approx((0.12 + 0.25, -0.35))
    assert len(read.groups()) == 1
    # the .mdoc alone names the stack
    assert read_series(tmp_path / "S.mrc.mdoc").records[3].image is not None


def test_missing_mdoc(tmp_path):
    series = sim.simulate_series(sim.rotation_matrix(100.0, 5.0), shape=(32, 32))
    path = sim.write_series(series, tmp_path / "S.mrc")
    (tmp_path / "S.mrc.mdoc").unlink()
    with pytest.raises(InvalidDataError, match="mdoc"):
        read_series(path)


@pytest.mark.parametrize(
    ("name", "sections", "first_shift", "mag_index"),
    [
        ("images/serialem_mdoc/tilt_series.mdoc", 41, (-0.0108126, -0.121079), 31),
        ("images/serialem_mdoc/montage_section.mdoc", 63, (0.0, 0.0), 4),
        ("images/serialem_mdoc/frame_set_single.mdoc", 1, (2.69654, -0.304661), 26),
    ],
)
def test_real_mdoc_files(name, sections, first_shift, mag_index):
    path = real_file(name)
    read = read_series(path, load_images=False)
    assert len(read.records) == sections
    first = read.records[0]
    assert first.image_shift == pytest.approx(first_shift)
    assert first.mag_index == mag_index
    assert first.stage is not None and first.exposure_s > 0


def test_single_images_named_by_an_mdoc(tmp_path):
    """Sections naming their own TIFF (a frame-set's movie is summed): rows run along
    SerialEM's camera y, as it writes TIFF."""
    import tifffile

    series = sim.simulate_series(sim.rotation_matrix(100.0, 5.0), shape=(48, 48))
    text = sim.mdoc_text(series, "unused.mrc").replace("ImageFile = unused.mrc\n", "")
    lines = []
    for line in text.splitlines():
        lines.append(line)
        if line.startswith("[ZValue = "):
            k = int(line.split("=")[1].strip(" ]"))
            lines.append(f"SubFramePath = X:\\frames\\image_{k}.tif")
            frames = np.stack([series.images[k] / 2, series.images[k] / 2])
            tifffile.imwrite(tmp_path / f"image_{k}.tif", frames.astype(np.float32))
    (tmp_path / "singles.mdoc").write_text("\n".join(lines))
    read = read_series(tmp_path / "singles.mdoc")
    assert read.row_is_camera_y is False  # TIFF frames: rows against camera y
    np.testing.assert_allclose(read.records[4].image, series.images[4], rtol=1e-6)
    assert any("summed" in note for note in read.notes)
