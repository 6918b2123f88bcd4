"""The table model the calibration tables share."""

import numpy as np
import pandas as pd
import pytest

from napari_emcal.errors import InvalidDataError, InvalidParameterError
from napari_emcal.tables import Column, Table, flag


class Sample(Table):
    COLUMNS = (
        Column("name", "text"),
        Column("length_nm", label="length", required=True, positive=True),
        Column("count", "integer", default=1),
        Column("angle_deg"),
    )
    SORT_BY = ("length_nm",)
    NAME = "sample table"

    def check(self, rows):
        problems = super().check(rows)
        return flag(problems, rows["angle_deg"].abs() > 180, "angle beyond ±180°")


def test_rows_are_converted_checked_and_sorted():
    table = Sample()
    assert table.add_row(name=" b ", length_nm="2.5") == 0
    assert table.add_row(name="a", length_nm=1.0, count=3.0) == 0  # sorted by length
    rows = table.rows
    assert list(rows["name"]) == ["a", "b"] and list(rows["count"]) == [3, 1]
    assert rows["count"].dtype == np.int64 and rows["length_nm"].dtype == np.float64
    assert table.update(0, length_nm=9) == 1  # moves after the other row


@pytest.mark.parametrize(
    "values, message",
    [
        ({"length_nm": -1}, "length must be positive; got -1"),
        ({"length_nm": "long"}, "length must be a number; got 'long'"),
        ({"length_nm": float("inf")}, "length must be finite"),
        ({"length_nm": True}, "length must be a number; got True"),
        ({"name": "x"}, "length is required"),
        ({"length_nm": 1, "count": 1.5}, "count must be a whole number"),
        ({"length_nm": 1, "angle_deg": 200}, "angle beyond"),
        ({"length_nm": 1, "colour": "red"}, "unknown column"),
    ],
)
def test_bad_values_are_refused_and_change_nothing(values, message):
    table = Sample()
    table.add_row(length_nm=1)
    with pytest.raises(InvalidParameterError, match=message):
        table.add_row(**values)
    if "length_nm" in values:  # (an update keeps the row's own length)
        with pytest.raises(InvalidParameterError, match=message):
            table.update(0, **values)
    assert len(table) == 1 and table.rows.loc[0, "length_nm"] == 1


def test_rows_that_do_not_exist_are_named():
    table = Sample()
    with pytest.raises(InvalidParameterError, match="no row 99 in the sample table"):
        table.remove(99)
    with pytest.raises(InvalidParameterError, match="whole number"):
        table.update("0", length_nm=1)


def test_csv_round_trip_of_many_rows_and_line_numbers(tmp_path):
    n = 20_000
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "name": [f"{i:05d}" for i in range(n)],
            "length_nm": rng.uniform(1, 2, n),
            "count": rng.integers(1, 5, n),
            "angle_deg": np.nan,
        }
    )
    frame.to_csv(tmp_path / "t.csv", index=False)
    table = Sample.from_csv(tmp_path / "t.csv")
    expected = frame.sort_values("length_nm", kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(table.rows, expected, check_dtype=False)
    assert table.rows["name"].str.len().eq(5).all()  # text stays text ("00042")
    frame.loc[5, "length_nm"] = -3
    frame.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(InvalidDataError, match=r"bad.csv, line 7: length must be positive"):
        Sample.from_csv(tmp_path / "bad.csv")
    with pytest.raises(InvalidDataError, match="unknown column.*colour"):
        Sample.from_frame(pd.DataFrame({"length_nm": [1], "colour": ["red"]}))
    with pytest.raises(InvalidDataError, match="missing column.*length_nm"):
        Sample.from_frame(pd.DataFrame({"name": ["a"]}))


def test_many_rows_at_once_or_none():
    table = Sample()
    table.add_row(length_nm=5)
    assert list(table.add_rows(pd.DataFrame({"length_nm": [3.0, 9.0], "name": ["a", "b"]}))) == [
        0,
        2,
    ]
    with pytest.raises(InvalidParameterError, match="row 2: length must be positive"):
        table.add_rows(pd.DataFrame({"length_nm": [1.0, -1.0]}))
    assert len(table) == 3
