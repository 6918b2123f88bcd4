"""PixelSizeTable: derived columns, outliers, rotation ambiguity, CSV round trip."""

import numpy as np
import pandas as pd
import pytest

from napari_emcal.errors import InvalidDataError, InvalidParameterError
from napari_emcal.grating import PixelSizeTable, find_pixel_size, lattice_image


def table_of(rows):
    table = PixelSizeTable(tolerance=0.05)
    for magnification, pixel, angle in rows:
        table.add_row(
            magnification=magnification,
            pixel_size_nm=pixel,
            angle_deg=angle,
            image=f"{magnification}x",
        )
    return table


def test_products_and_outlier():
    # 14 µm camera pixels: pixel size x magnification = 14000 nm; one entry typed wrong
    table = table_of(
        [(20000, 0.70, 1.0), (5000, 2.80, -3.0), (10000, 1.40, 2.0), (40000, 0.70, 4.0)]
    )
    frame = table.frame
    assert list(frame["magnification"]) == [5000, 10000, 20000, 40000]
    assert frame["product_nm"].tolist() == pytest.approx([14000, 14000, 14000, 28000])
    assert frame["product_outlier"].tolist() == [False, False, False, True]


def test_relative_rotation_is_modulo_90_and_flags_ambiguity():
    table = table_of(
        [(1000, 10.0, 40.0), (2000, 5.0, -43.0), (4000, 2.5, -10.0), (8000, 1.25, 38.0)]
    )
    frame = table.frame
    rotation = frame["relative_rotation_deg"].tolist()
    assert np.isnan(rotation[0])
    # -43 - 40 = -83 ≡ +7 (mod 90); -10 - (-43) = 33; 38 - (-10) = 48 ≡ -42: near -45,
    # so it may as well be +48: ambiguous
    assert rotation[1:] == pytest.approx([7.0, 33.0, -42.0])
    assert frame["rotation_ambiguous"].tolist() == [False, False, False, True]


def test_add_result_and_refuse_failed_one():
    image = lattice_image((512, 512), spacing_px=25.6, angle_deg=12.0, dose=50, seed=1)
    result = find_pixel_size(image)
    table = PixelSizeTable()
    index = table.add(result, magnification=8000, image="grating 8kx")
    row = table.frame.iloc[index]
    assert row["pixel_size_nm"] == pytest.approx(result.pixel_size_nm)
    assert row["angle_deg"] == pytest.approx(result.angle_deg)
    assert row["mode"] == "grating" and row["image"] == "grating 8kx"
    with pytest.raises(InvalidDataError, match="nothing to add"):
        table.add(find_pixel_size(np.random.default_rng(0).normal(size=(256, 256))))
    with pytest.raises(InvalidParameterError):
        table.add_row(pixel_size_nm=-1.0)
    with pytest.raises(InvalidParameterError):
        table.set_magnification(0, 0.0)


def test_csv_round_trip(tmp_path):
    table = table_of([(5000, 2.8, -3.0), (10000, 1.4, 2.0)])
    table.add_row(pixel_size_nm=0.35, image="no magnification yet", mode="catalase")
    path = tmp_path / "pixel_sizes.csv"
    table.to_csv(path)
    back = PixelSizeTable.from_csv(path)
    pd.testing.assert_frame_equal(back.frame, table.frame)
    table.remove(2)
    assert len(table) == 2


def test_csv_import_names_bad_columns(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("image,pixel_size_nm,colour\na,1.0,red\n")
    with pytest.raises(InvalidDataError, match="colour"):
        PixelSizeTable.from_csv(bad)
    missing = tmp_path / "missing.csv"
    missing.write_text("image,magnification\na,1000\n")
    with pytest.raises(InvalidDataError, match="pixel_size_nm"):
        PixelSizeTable.from_csv(missing)
    with pytest.raises(InvalidDataError, match="cannot read"):
        PixelSizeTable.from_csv(tmp_path / "absent.csv")
