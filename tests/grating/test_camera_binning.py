"""The camera's binning is kept apart from the finder's working reduction (issue 38 item 1):
a SerialEM line holds the measured pixel size of an image larger than the working size."""

import pandas as pd
import pytest

from napari_emcal.cli import main
from napari_emcal.grating import PixelSizeTable, find_pixel_size
from napari_emcal.grating.export import serialem_pixel_lines
from napari_emcal.grating.table import NOT_RECORDED, UNCONFIRMED, camera_binning
from napari_emcal.io.images import open_image
from tests.conftest import real_file

A_SRTIO3 = 0.3905  # nm


@pytest.fixture(scope="module")
def srtio3():
    image, metadata = open_image(real_file("images/tia_srtio3/16_STOimage_1.ser"))
    # the default working size: the finder reduces the 1024² image
    result = find_pixel_size(image, mode="lattice", spacing_nm=A_SRTIO3)
    assert result.found and result.binning > 1
    return result, metadata


def _pixel(line):
    name, index, _, _, pixel = line.split()
    assert name == "RotationAndPixel"
    return int(index), float(pixel)


def test_serialem_line_holds_the_measured_pixel_size_api(srtio3):
    result, metadata = srtio3
    table = PixelSizeTable()
    table.add(result, magnification=metadata["magnification"], image="STO", metadata=metadata)
    row = table.frame.iloc[0]
    assert row["binning"] == 1 and row["binning_source"] == NOT_RECORDED
    lines, skipped = serialem_pixel_lines(table, {metadata["magnification"]: 40})
    assert not skipped
    assert _pixel(lines[0]) == (40, pytest.approx(result.pixel_size_nm, rel=1e-4))


def test_serialem_line_through_the_cli(srtio3, tmp_path, capsys):
    result, metadata = srtio3
    table = PixelSizeTable()
    table.add(result, magnification=metadata["magnification"], image="STO", metadata=metadata)
    table.to_csv(tmp_path / "t.csv")
    mag = f"{metadata['magnification']:g}=27"
    out = tmp_path / "props.txt"
    assert main(["export", "serialem-pixel", str(tmp_path / "t.csv"), "--mag-index", mag,
                 "--out", str(out)]) == 0  # fmt: skip
    assert _pixel(out.read_text().splitlines()[0]) == (
        27,
        pytest.approx(result.pixel_size_nm, rel=1e-4),
    )


def test_camera_binning_from_metadata_typed_or_assumed(srtio3):
    result, _ = srtio3
    tvips = {"original_metadata": {"TVIPS": {"Binning": 40000, "BinningX": 4, "BinningY": 4}}}
    assert camera_binning(tvips) == (4, "metadata: BinningX")
    assert camera_binning({"ImageTags": {"Acquisition": {"Binning": [2, 2]}}}) == (
        2,
        "metadata: Binning",
    )
    assert camera_binning({"Binning": 40000}) is None  # an encoding, not a binning
    assert camera_binning({}) is None
    table = PixelSizeTable()
    table.add(result, magnification=1000, metadata=tvips)
    table.add(result, magnification=2000, binning=2)
    table.add(result, magnification=4000)
    frame = table.frame
    assert frame["binning"].tolist() == [4, 2, 1]
    assert frame["binning_source"].tolist() == ["metadata: BinningX", "typed", NOT_RECORDED]
    assert frame["unbinned_pixel_size_nm"].tolist() == pytest.approx(
        [result.pixel_size_nm / 4, result.pixel_size_nm / 2, result.pixel_size_nm]
    )
    # correcting the binning in the table makes it typed
    table.update(2, binning=2)
    assert table.frame["binning_source"].iloc[2] == "typed"


def test_a_binning_of_unknown_origin_is_not_exported(tmp_path, capsys):
    # an older table kept the finder's working reduction in 'binning'
    legacy = pd.DataFrame(
        {"image": ["a", "b"], "magnification": [1000, 2000], "pixel_size_nm": [1.0, 0.5],
         "angle_deg": [0.0, 1.0], "mode": ["grating"] * 2, "binning": [2, 1]}
    )  # fmt: skip
    legacy.to_csv(tmp_path / "old.csv", index=False)
    table = PixelSizeTable.from_csv(tmp_path / "old.csv")
    assert table.frame["binning_source"].tolist() == [UNCONFIRMED, NOT_RECORDED]
    lines, skipped = serialem_pixel_lines(table, {1000: 10, 2000: 11})
    assert [_pixel(line) for line in lines] == [(11, 0.5)]
    assert "unconfirmed" in skipped[0]
    assert main(["export", "serialem-pixel", str(tmp_path / "old.csv"), "--mag-index",
                 "1000=10", "--mag-index", "2000=11"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "RotationAndPixel 11" in out and "RotationAndPixel 10" not in out
    assert "unconfirmed" in out


def test_result_json_names_the_working_reduction(srtio3):
    result, _ = srtio3
    document = result.to_dict()
    assert "binning" not in document and document["working_reduction"] == result.binning
