"""A pandas frame shown in a magicgui Table, with highlighted rows and editable cells."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from magicgui import widgets
from napari.utils.notifications import show_info
from qtpy.QtCore import QTimer
from qtpy.QtGui import QColor

from ..errors import EmcalError
from .common import open_path, save_path, table_value

__all__ = ["FrameTable", "SessionTable", "TableExport"]


class FrameTable:
    """Shows a frame; an edited cell calls ``on_edit(row, column, text)`` and then, once Qt
    has finished with the cell, ``after_edit()`` (typically: show the table again).

    The table is read-only when ``on_edit`` is None.
    """

    def __init__(
        self,
        on_edit: Callable[[int, str, str], None] | None = None,
        after_edit: Callable[[], None] | None = None,
        **kwargs,
    ):
        kwargs.setdefault(
            "tooltip",
            "double-click a cell to correct it; units are in the headers"
            if on_edit is not None
            else "select rows to remove them; units are in the headers",
        )
        self.widget = widgets.Table(value={"data": [], "index": [], "columns": []}, **kwargs)
        self.widget.read_only = on_edit is None
        # the table scrolls itself: its content must never widen the dock
        from qtpy.QtWidgets import QSizePolicy

        self.widget.native.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Expanding)
        self.widget.native.setMinimumWidth(0)
        self._columns: list[str] = []
        self._on_edit, self._after_edit = on_edit, after_edit
        # A flag, not QSignalBlocker: magicgui's Table keeps cell values through Qt signals.
        self._refreshing = False
        self.widget.native.itemChanged.connect(self._edited)

    @property
    def native(self):
        return self.widget.native

    def show(self, frame, colours: dict[int, str] | None = None) -> None:
        """Display ``frame`` with headers in words and units, numbers as people write them
        (integers without decimals, 6 significant digits), columns sized to their content;
        rows in ``colours`` get that background."""
        self._refreshing = True
        try:
            value = table_value(frame)
            value["data"] = [[_cell(v) for v in row] for row in value["data"]]
            value["columns"] = [header(str(c)) for c in frame.columns]
            self.widget.value = value
            self._columns = [str(c) for c in frame.columns]
            self.native.resizeColumnsToContents()
            for row, colour in (colours or {}).items():
                for column in range(len(self._columns)):
                    item = self.native.item(row, column)
                    if item is not None:
                        item.setBackground(QColor(colour))
        finally:
            self._refreshing = False

    def selected_rows(self) -> list[int]:
        return sorted({index.row() for index in self.native.selectedIndexes()})

    def cell_text(self, row: int, column: str) -> str:
        return self.native.item(row, self._columns.index(column)).text()

    def set_cell_text(self, row: int, column: str, text: str) -> None:
        """Type into a cell, as the user would (used by tests and scripts)."""
        self.native.item(row, self._columns.index(column)).setText(text)

    def _edited(self, item) -> None:
        if self._refreshing or self._on_edit is None:
            return
        self._on_edit(item.row(), self._columns[item.column()], item.text())
        if self._after_edit is not None:
            # refilling the table inside its own signal garbles it: wait for Qt
            QTimer.singleShot(0, self._after_edit)


@dataclass(frozen=True)
class TableExport:
    """A *Save for …* button of a session table: ``write(table, path)`` writes the file
    and returns a sentence for the user (what was written, what was left out)."""

    text: str
    tooltip: str
    file_name: str
    write: Callable
    file_filter: str = "Text (*.txt)"


class SessionTable(widgets.Container):
    """A tool's session table as its dock shows it: the rows (:attr:`view`), *Remove
    selected row*, *Export CSV…* and *Import CSV…*.

    ``table`` has ``remove``, ``to_csv`` and the class method ``from_csv``; ``host`` is the
    dock (its ``status``, ``error`` and ``refresh_table()``, called after every change).
    ``exports`` adds a *Save for …* button per :class:`TableExport` (another tool's form).
    """

    def __init__(
        self,
        host,
        table,
        *,
        title: str,
        csv_name: str,
        editable: bool = False,
        exports: tuple = (),
    ):
        super().__init__(labels=False)
        self.margins = (0, 0, 0, 0)
        self.host, self.table = host, table
        self.title, self.csv_name = title, csv_name
        on_edit = self._edited if editable else None
        self.view = FrameTable(on_edit=on_edit, after_edit=host.refresh_table)
        self.remove_button = widgets.PushButton(
            text="Remove selected row", tooltip="remove the selected table rows"
        )
        self.export_button = widgets.PushButton(
            text="Export CSV…", tooltip="write the table to a CSV file"
        )
        self.import_button = widgets.PushButton(
            text="Import CSV…", tooltip="replace the table with the rows of a CSV file"
        )
        self.extend([self.view.widget, self.remove_button, self.export_button, self.import_button])
        self.export_buttons = {}
        for export in exports:
            button = widgets.PushButton(text=export.text, tooltip=export.tooltip)
            button.changed.connect(lambda *_, export=export: self._save_for_dialog(export))
            self.export_buttons[export.text] = button
            self.append(button)
        self.remove_button.changed.connect(lambda: self.remove_selected())
        self.export_button.changed.connect(self._export_dialog)
        self.import_button.changed.connect(self._import_dialog)

    def _edited(self, row: int, column: str, text: str) -> None:
        """A corrected cell: the table checks it (and says what is wrong)."""
        try:
            self.table.update(row, **{column: text})
        except EmcalError as exc:
            self.host.error(f"row {row + 1}, {column}: {exc}")

    def remove_selected(self) -> None:
        for row in reversed(self.view.selected_rows()):  # shown in the table's order
            self.table.remove(row)
        self.host.refresh_table()

    def export_csv(self, path) -> None:
        self.table.to_csv(path)
        self.host.status.value = f"table saved to {path}"

    def import_csv(self, path) -> None:
        """Replace the table with a CSV file's (kept as it was when the file is refused)."""
        try:
            self.table = type(self.table).from_csv(path)
        except EmcalError as exc:
            self.host.error(str(exc))
            return
        self.host.refresh_table()
        self.host.status.value = f"{len(self.table)} row(s) read from {path}"

    def save_for(self, export: TableExport, path) -> None:
        """Write the table in another tool's form (the reason shown when it cannot be)."""
        try:
            message = export.write(self.table, path)
        except (EmcalError, OSError) as exc:
            self.host.error(f"{export.text.rstrip('…')}: {exc}")
            return
        self.host.status.value = message
        show_info(message)

    def _save_for_dialog(self, export: TableExport) -> None:
        path = save_path(self.native, export.text.rstrip("…"), export.file_name, export.file_filter)
        if path:
            self.save_for(export, path)

    def _export_dialog(self, event=None):
        path = save_path(self.native, f"Export {self.title}", self.csv_name)
        if path:
            self.export_csv(path)

    def _import_dialog(self, event=None):
        path = open_path(self.native, f"Import {self.title}")
        if path:
            self.import_csv(path)


#: Unit suffixes of column names (the tables' convention) and how a header writes them;
#: longest first.
_UNITS = (
    ("_e_A2_s", "e⁻/Å²/s"),
    ("_e_A2", "e⁻/Å²"),
    ("_nm_px", "nm/px"),
    ("_pa", "pA"),
    ("_um", "µm"),
    ("_nm", "nm"),
    ("_mm", "mm"),
    ("_kv", "kV"),
    ("_deg", "°"),
    ("_px", "px"),
    ("_ms", "ms"),
    ("_s", "s"),
    ("_percent", "%"),
)


def header(name: str) -> str:
    """A column's header in words with its unit: ``flux_e_A2_s`` -> ``Flux (e⁻/Å²/s)``."""
    unit = ""
    for suffix, text in _UNITS:
        if name.lower().endswith(suffix.lower()) and len(name) > len(suffix):
            name, unit = name[: -len(suffix)], text
            break
    words = name.replace("_", " ").strip()
    words = words[:1].upper() + words[1:]
    return f"{words} ({unit})" if unit else words


def _cell(value):
    """How a cell shows a value: integers without decimals, floats to 6 digits."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    if isinstance(value, float):
        if value != value:  # NaN
            return ""
        return f"{value:.0f}" if value.is_integer() and abs(value) < 1e15 else f"{value:.6g}"
    return str(value)
