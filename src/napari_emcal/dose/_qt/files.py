"""The dose table to and from files: CSV and Excel out, CSV tables and current
calibrations in (read in a worker)."""

from __future__ import annotations

import warnings
from pathlib import Path

from magicgui import widgets

from ..._qt.common import open_path, save_path
from ...errors import EmcalError, IncompleteDataWarning
from ..calibration import CurrentCalibration
from ..table import DoseTable

__all__ = ["DoseFiles"]


class DoseFiles(widgets.Container):
    """*Export CSV…*, *Export Excel…*, *Export dose per image (text)…*, *Write doses into an
    .mdoc…*, *Import CSV…*, *Import current calibration CSV…*;
    works on its dock (``host``): its table, ``refresh()``, ``status`` and
    ``in_background(label, read, apply)``."""

    def __init__(self, host):
        super().__init__(labels=False)
        self.margins = (0, 0, 0, 0)
        self.host = host
        buttons = {
            "Export CSV…": ("write the dose table to a CSV file", self._export_csv_dialog),
            "Export Excel…": (
                "write the dose table and its calibration to an Excel file",
                self._export_excel_dialog,
            ),
            "Export dose per image (text)…": (
                "prior dose and dose of each image (e⁻/Å², acquisition order), the per-tilt "
                "file RELION, Warp and AreTomo read",
                self._export_dose_text_dialog,
            ),
            "Write doses into an .mdoc…": (
                "a copy of a SerialEM .mdoc of the table with ExposureDose and "
                "PriorRecordDose (e⁻/Å²) set from it",
                self._export_mdoc_dialog,
            ),
            "Import CSV…": (
                "add the rows of a dose table CSV (read in a worker)",
                self._import_csv_dialog,
            ),
            "Import current calibration CSV…": (
                "add the rows of a current calibration CSV",
                self._import_calibration_dialog,
            ),
        }
        for text, (tooltip, action) in buttons.items():
            button = widgets.PushButton(text=text, tooltip=tooltip)
            button.changed.connect(action)
            self.append(button)

    def export_csv(self, path) -> None:
        self.host.table.to_csv(path)
        self.host.status.value = f"table saved to {path}"

    def export_excel(self, path) -> None:
        self.host.table.to_excel(path)
        self.host.status.value = f"table and current calibration saved to {path}"

    def export_dose_text(self, path) -> None:
        from ..export import write_dose_text

        written = write_dose_text(self.host.table, path)
        self.host.status.value = f"prior dose and dose per image written to {written}"

    def export_mdoc(self, mdoc, path) -> None:
        from ..export import write_mdoc_doses

        written, sections = write_mdoc_doses(mdoc, self.host.table, path)
        self.host.status.value = (
            f"{written}: ExposureDose and PriorRecordDose in {sections} sections"
        )

    def import_csv(self, path):
        """Add the rows of a CSV to the table (columns checked; missing ones named), read
        in a worker; returns the worker."""

        def read():
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", IncompleteDataWarning)
                imported = DoseTable.from_csv(path)
            return imported, " ".join(str(w.message) for w in caught)

        def apply(value):
            imported, notes = value
            self.host.table.add_rows(imported.rows)
            self.host.refresh()
            self.host.status.value = f"{len(imported)} row(s) added from {path}. {notes}".strip()

        return self.host.in_background(f"importing {Path(path).name}", read, apply)

    def import_calibration(self, path):
        """Add the currents of a calibration CSV, read in a worker; returns the worker."""

        def apply(calibration):
            self.host.table.calibration.add_rows(calibration.rows)
            self.host.refresh()
            self.host.status.value = f"{len(calibration)} current(s) added from {path}"

        return self.host.in_background(
            f"importing {Path(path).name}", lambda: CurrentCalibration.from_csv(path), apply
        )

    def _export_csv_dialog(self, event=None):
        path = save_path(self.native, "Export the dose table", "dose_table.csv")
        if path:
            self.export_csv(path)

    def _export_excel_dialog(self, event=None):
        path = save_path(self.native, "Export the dose table", "dose_table.xlsx", "Excel (*.xlsx)")
        if path:
            self.export_excel(path)

    def _export_dose_text_dialog(self, event=None):
        path = save_path(self.native, "Export the dose per image", "dose.txt", "Text (*.txt)")
        if path:
            self._try(self.export_dose_text, path)

    def _export_mdoc_dialog(self, event=None):
        mdoc = open_path(self.native, "The .mdoc whose images are in the table", "mdoc (*.mdoc)")
        if not mdoc:
            return
        path = save_path(self.native, "Write the .mdoc with doses", mdoc.name, "mdoc (*.mdoc)")
        if path:
            self._try(self.export_mdoc, mdoc, path)

    def _try(self, action, *args) -> None:
        try:
            action(*args)
        except (EmcalError, OSError) as exc:
            self.host.error(str(exc))

    def _import_csv_dialog(self, event=None):
        path = open_path(self.native, "Import a dose table")
        if path:
            self.import_csv(path)

    def _import_calibration_dialog(self, event=None):
        path = open_path(self.native, "Import a current calibration")
        if path:
            self.import_calibration(path)
