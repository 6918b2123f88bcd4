"""HighDefocusTable: adding, replacing, interpolation rules and CSV."""

import warnings

import numpy as np
import pandas as pd
import pytest

from napari_emcal.errors import CalibrationWarning, InvalidDataError, InvalidParameterError
from napari_emcal.highdefocus import HighDefocusTable


@pytest.fixture
def table():
    t = HighDefocusTable()
    for defocus, scale, rotation in ((-100, 1.08, 3.0), (-200, 1.16, 6.0), (-400, 1.30, 9.0)):
        t.add(defocus, scale, rotation, intensity=40.0, spot=5, probe="micro")
    for defocus, scale, rotation in ((-100, 1.04, 2.0), (-200, 1.10, 4.0)):
        t.add(defocus, scale, rotation, intensity=60.0, spot=5, probe="micro")
    t.add(-100, 1.50, -20.0, intensity=40.0, spot=5, probe="nano")
    t.add(-100, 1.20, 30.0, intensity=40.0, spot=8, probe="micro")
    return t


def no_warning(call):
    with warnings.catch_warnings():
        warnings.simplefilter("error", CalibrationWarning)
        return call()


def test_between_calibrated_defocus_values_linear(table):
    scale, rotation = no_warning(lambda: table.interpolate(-150, 40, spot=5, probe="micro"))
    assert scale == pytest.approx(1.12) and rotation == pytest.approx(4.5)
    assert table.interpolate(-300, 40, 5, "micro") == pytest.approx((1.23, 7.5))
    assert table.interpolate(-200, 40, 5, "micro") == pytest.approx((1.16, 6.0))


def test_between_focus_and_nearest_calibration_linear_from_identity(table):
    scale, rotation = no_warning(lambda: table.interpolate(-25, 40, spot=5, probe="micro"))
    assert scale == pytest.approx(1 + 0.08 / 4) and rotation == pytest.approx(0.75)
    assert table.interpolate(0, 40, 5, "micro") == (1.0, 0.0)


def test_beyond_largest_defocus_nearest_values_with_warning(table):
    with pytest.warns(CalibrationWarning, match="not extrapolated"):
        result = table.interpolate(-800, 40, spot=5, probe="micro")
    assert result == pytest.approx((1.30, 9.0))


def test_other_side_of_focus_is_identity_with_warning(table):
    with pytest.warns(CalibrationWarning, match="overfocus side"):
        assert table.interpolate(150, 40, spot=5, probe="micro") == (1.0, 0.0)


def test_between_intensities_linear(table):
    # at -150 µm: intensity 40 gives (1.12, 4.5), intensity 60 gives (1.07, 3.0)
    scale, rotation = no_warning(lambda: table.interpolate(-150, 50, spot=5, probe="micro"))
    assert scale == pytest.approx((1.12 + 1.07) / 2) and rotation == pytest.approx(3.75)
    assert table.interpolate(-150, 45, 5, "micro") == pytest.approx((1.12 - 0.05 / 4, 4.125))


def test_outside_intensities_nearest_with_warning(table):
    with pytest.warns(CalibrationWarning, match="outside the calibrated range"):
        assert table.interpolate(-150, 80, 5, "micro") == pytest.approx((1.07, 3.0))


def test_same_probe_mode_only(table):
    assert table.interpolate(-100, 40, 5, "nano") == pytest.approx((1.5, -20.0))
    with pytest.raises(InvalidParameterError, match="no calibration for probe mode 'LM'"):
        table.interpolate(-100, 40, 5, "LM")
    with pytest.raises(InvalidParameterError, match="several probe modes"):
        table.interpolate(-100, 40, 5)


def test_nearest_spot_size(table):
    assert table.interpolate(-100, 40, 8, "micro") == pytest.approx((1.2, 30.0))
    with pytest.warns(CalibrationWarning, match="spot size 7 is not calibrated; using spot 8"):
        assert table.interpolate(-100, 40, 7, "micro") == pytest.approx((1.2, 30.0))
    with pytest.warns(CalibrationWarning, match="using spot 5"):
        assert table.interpolate(-100, 40, 3, "micro") == pytest.approx((1.08, 3.0))
    with pytest.raises(InvalidParameterError, match="several spot sizes"):
        table.interpolate(-100, 40, probe="micro")


def test_single_setting_needs_no_setting():
    t = HighDefocusTable()
    t.add(-100, 1.1, 4.0)
    t.add(-300, 1.3, 8.0)
    assert t.interpolate(-200) == pytest.approx((1.2, 6.0))
    t.add(-100, 1.2, 4.0, intensity=50.0)
    with pytest.raises(InvalidParameterError, match="several intensities"):
        t.interpolate(-100)


def test_near_duplicate_replaces_and_says_so(table):
    before = len(table)
    added = table.add(-101, 1.085, 3.1, intensity=40.2, spot=5, probe="micro", date="today")
    assert len(table) == before
    assert added.replaced is not None and added.replaced["scale"] == 1.08
    assert "replaced the calibration at -100 µm" in added.message
    assert table.frame.loc[added.index, "scale"] == 1.085
    # a different spot, probe or a clearly different defocus adds a row
    assert table.add(-101, 1.2, 3.0, intensity=40, spot=6, probe="micro").replaced is None
    assert table.add(-110, 1.2, 3.0, intensity=40, spot=5, probe="micro").replaced is None
    assert len(table) == before + 2


def test_rows_sorted_and_editable(table):
    frame = table.frame
    micro5 = frame[(frame.probe == "micro") & (frame.spot == 5) & (frame.intensity == 40)]
    assert list(micro5.defocus_um) == sorted(micro5.defocus_um)
    index = table.update(0, scale=1.5)
    assert table.frame.loc[index, "scale"] == 1.5
    with pytest.raises(InvalidParameterError, match="scale must be positive"):
        table.update(0, scale=-1)
    with pytest.raises(InvalidParameterError, match="unknown column"):
        table.update(0, colour="red")
    assert table.frame.loc[index, "scale"] == 1.5  # the failed edits changed nothing


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"defocus_um": 0}, "non-zero"),
        ({"defocus_um": float("nan")}, "non-zero"),
        ({"scale": 0}, "scale must be positive"),
        ({"rotation_deg": float("inf")}, "rotation must be finite"),
        ({"spot": -1}, "spot size must be positive"),
        ({"scale": "big"}, "scale must be a number"),
    ],
)
def test_invalid_rows_refused(kwargs, message):
    values = {"defocus_um": -100, "scale": 1.1, "rotation_deg": 2.0, **kwargs}
    with pytest.raises(InvalidParameterError, match=message):
        HighDefocusTable().add(
            values.pop("defocus_um"), values.pop("scale"), values.pop("rotation_deg"), **values
        )


def test_empty_table_lookup():
    with pytest.raises(InvalidDataError, match="empty"):
        HighDefocusTable().interpolate(-100)


def test_csv_round_trip(table, tmp_path):
    path = tmp_path / "highdefocus.csv"
    table.add(
        -150, 1.11, -2.5, intensity=None, spot=None, probe="", near_image="a, b", far_image="c"
    )
    table.to_csv(path)
    back = HighDefocusTable.from_csv(path)
    pd.testing.assert_frame_equal(back.frame, table.frame)
    assert back.interpolate(-150, 40, 5, "micro") == table.interpolate(-150, 40, 5, "micro")


def test_csv_errors_name_the_columns(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("defocus_um,scale,colour\n-100,1.1,red\n")
    with pytest.raises(InvalidDataError, match="unknown column.*colour"):
        HighDefocusTable.from_csv(path)
    path.write_text("defocus_um,scale\n-100,1.1\n")
    with pytest.raises(InvalidDataError, match="missing column.*rotation_deg"):
        HighDefocusTable.from_csv(path)
    path.write_text("defocus_um,scale,rotation_deg\n-100,1.1,2\n-200,-1,3\n")
    with pytest.raises(InvalidDataError, match="line 3: scale must be positive"):
        HighDefocusTable.from_csv(path)
    with pytest.raises(InvalidDataError, match="cannot read"):
        HighDefocusTable.from_csv(tmp_path / "absent.csv")


def test_add_result(table):
    from napari_emcal.highdefocus import defocus_pair, measure

    pair = defocus_pair((512, 512), scale=1.1, rotation_deg=4.0, seed=1)
    ends = np.array([[100.0, 100.0], [400.0, 380.0]])
    result = measure(pair.near, pair.far, ends, pair.near_to_far(ends), refine=False)
    added = table.add_result(result, -250, intensity=40, spot=5, probe="micro")
    row = table.frame.loc[added.index]
    assert row.scale == result.scale and row.score == result.score and row.defocus_um == -250
