"""The sign of the rotation written for SerialEM, from images stored as SerialEM stores them.

SerialEM holds an image in memory with row 0 at the top of its display, its camera axes
right-handed (y up the display), and measures and applies the high-defocus rotation from
camera +x towards camera +y. It reverses the rows when it writes MRC and keeps them when it
writes TIFF (docs/science.md, "SerialEM's camera axes"). These tests make the defocused
image turn by +θ in those camera axes, store the pair both ways, measure it from the
files with the project's own reader and measure function, and check the exported line.
"""

import mrcfile
import numpy as np
import pytest
import tifffile

from napari_emcal.errors import InvalidDataError
from napari_emcal.highdefocus import HighDefocusTable, defocus_pair, measure
from napari_emcal.highdefocus.export import serialem_high_defocus_lines
from napari_emcal.io.images import open_image

THETA_CAMERA = 6.0  # degrees, from camera +x towards camera +y (counter-clockwise on screen)
SCALE = 1.08


@pytest.fixture(scope="module")
def memory_pair():
    """The pair as SerialEM holds it in memory (rows down the display, against camera y):
    +θ counter-clockwise on screen is -θ from +col towards +row of the memory array."""
    return defocus_pair(
        (640, 640),
        scale=SCALE,
        rotation_deg=-THETA_CAMERA,
        blur_px=1.5,
        dose_near=200,
        dose_far=60,
        seed=3,
    )


def _store(pair, folder, kind):
    """Write the pair as SerialEM would; the user's lines on the stored arrays (row, col)."""
    ends = np.array([[150.0, 170.0], [470.0, 430.0]])  # near-focus memory (row, col)
    lines = [ends, pair.near_to_far(ends)]
    paths = [folder / f"near.{kind}", folder / f"far.{kind}"]
    for image, path in zip((pair.near, pair.far), paths, strict=True):
        if kind == "mrc":  # KStoreMRC / KStoreIMOD: convertForWriting(..., needFlipped=true)
            with mrcfile.new(path, overwrite=True) as mrc:
                mrc.set_data(np.ascontiguousarray(image[::-1]).astype(np.float32))
        else:  # KStoreIMOD: tiffWriteSection(..., inverted=1), rows in memory order
            tifffile.imwrite(path, image.astype(np.uint16))
    if kind == "mrc":
        height = pair.near.shape[0]
        lines = [np.column_stack([height - 1 - line[:, 0], line[:, 1]]) for line in lines]
    return paths, lines


@pytest.mark.parametrize("kind", ["mrc", "tif"])
def test_exported_rotation_is_serialem_camera_rotation(memory_pair, tmp_path, kind):
    (near_path, far_path), (near_line, far_line) = _store(memory_pair, tmp_path, kind)
    near, near_meta = open_image(near_path)
    far, far_meta = open_image(far_path)
    result = measure(near, far, near_line, far_line)
    # on the stored array the rotation's sign depends on the format: the test can fail
    stored_sense = 1.0 if kind == "mrc" else -1.0
    assert result.rotation_deg == pytest.approx(stored_sense * THETA_CAMERA, abs=0.1)

    table = HighDefocusTable()
    table.add_result(
        result,
        -80.0,
        intensity=0.4123,
        spot=5,
        probe="micro",
        near_image=near_meta["source"],
        far_image=far_meta["source"],
    )
    (line,), skipped = serialem_high_defocus_lines(table)
    assert skipped == []
    # ParameterIO.cpp: spot probe defocus intensity scale rotation crossover aperture magInd
    fields = line.split()
    assert fields[0] == "HighFocusMagCal"
    assert float(fields[5]) == pytest.approx(SCALE, rel=2e-3)
    assert float(fields[6]) == pytest.approx(THETA_CAMERA, abs=0.1)


def test_rows_of_unknown_or_mixed_frame_are_left_out_with_the_reason():
    table = HighDefocusTable()
    setting = dict(intensity=0.4, spot=5, probe="micro")
    table.add(-100.0, 1.04, 2.5, near_image="n.mrc", far_image="f.MRC", **setting)
    table.add(-150.0, 1.06, 3.5, near_image="n.tiff", far_image="f.tif", **setting)
    table.add(-200.0, 1.08, 4.5, near_image="near layer", far_image="f.mrc", **setting)
    table.add(-250.0, 1.10, 5.5, near_image="n.mrc", far_image="f.tif", **setting)
    table.add(-300.0, 1.12, 6.5, near_image="n.dm4", far_image="f.dm4", **setting)
    lines, skipped = serialem_high_defocus_lines(table)
    rotations = {float(line.split()[3]): float(line.split()[6]) for line in lines}
    assert rotations == {-100.0: 2.5, -150.0: -3.5}
    assert len(skipped) == 3
    assert any("near layer" in s and "-200" in s for s in skipped)
    assert sum("not an MRC or TIFF file" in s for s in skipped) == 2
    assert sum("one image is MRC and the other TIFF" in s for s in skipped) == 1

    only_unknown = HighDefocusTable()
    only_unknown.add(-100.0, 1.04, 2.5, near_image="a", far_image="b", **setting)
    with pytest.raises(InvalidDataError, match="sign of the rotation"):
        serialem_high_defocus_lines(only_unknown)


def test_cli_measure_into_a_table_then_export_from_tiff(memory_pair, tmp_path, capsys):
    """From the command line: the table records the image files, so the export knows the
    TIFF's rows run against SerialEM's camera y and writes +θ."""
    from napari_emcal.cli import main

    (near_path, far_path), (near_line, far_line) = _store(memory_pair, tmp_path, "tif")
    table = tmp_path / "hd.csv"
    argv = ["high-defocus", str(near_path), str(far_path), "--table", str(table)]
    argv += ["--near-line", *map(str, near_line.ravel()), "--far-line", *map(str, far_line.ravel())]
    argv += ["--defocus-um", "-80", "--intensity", "0.4123", "--spot", "5", "--probe", "micro"]
    assert main([*argv, "--no-history"]) == 0
    capsys.readouterr()
    assert main(["export", "serialem-high-defocus", str(table)]) == 0
    fields = capsys.readouterr().out.split()
    assert fields[:2] == ["HighFocusMagCal", "5"]
    assert float(fields[6]) == pytest.approx(THETA_CAMERA, abs=0.1)
