"""The "Dose table" dock widget: one row per image, flux and cumulative dose, autosaved.

Glue only: layers and files -> rows (:mod:`napari_emcal.dose.metadata`) -> a
:class:`DoseTable` shown as an editable table, with the current calibration beside it, a
plot, exports, and an atomic autosave after every change that is offered back after a crash
or restart.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pandas as pd
from magicgui import widgets
from napari.utils.notifications import show_error, show_info, show_warning

from ..._qt.common import ScrollableDock, is_greyscale_image, message_label, open_path, save_path
from ..._qt.tables import FrameTable
from ..._qt.tasks import start_worker
from ...errors import EmcalError, IncompleteDataWarning
from ..autosave import Autosave, AutosaveFolder
from ..calibration import CALIBRATION_COLUMNS, CurrentCalibration
from ..metadata import rows_from_file, rows_from_layer
from ..table import DERIVED, INPUT, DoseTable

__all__ = ["DoseWidget"]

#: The order the columns are shown in: results first, then what was entered.
SHOWN = (
    "image",
    "time",
    "elapsed_s",
    "mode",
    "flux_e_A2_s",
    "dose_e_A2",
    "dose_from",
    "dose_estimate_e_A2",
    "probe_dose_e_A2",
    "cumulative_e_A2",
    "over_budget",
    "problems",
    "current_used_pa",
    "current_from",
    *[c for c in INPUT if c not in ("image", "time", "mode")],
    "cumulative_lower_bound",
)
OVER_BUDGET_COLOUR = "#7a1f1f"
PROBLEM_COLOUR = "#6b5a00"
ACCUMULATION_CHOICES = [
    ("exposure only (sum of image doses)", "exposure"),
    ("beam-on wall clock (flux x time between images)", "wall_clock"),
]


class DoseWidget(ScrollableDock, widgets.Container):
    """Electron flux and cumulative dose of every image, with a current calibration."""

    def __init__(self, napari_viewer, autosave: Autosave | None = None):
        super().__init__(labels=True, scrollable=True)  # fits a laptop screen
        self.viewer = napari_viewer
        # one session file per window, locked while it is open (dose/autosave.py)
        if autosave is not None:
            self.sessions = AutosaveFolder(autosave.path.parent)
            self.autosave = autosave
            self.autosave.lock()
        else:
            self.sessions = AutosaveFolder()
            self.autosave = self.sessions.new_session()
        self.table = DoseTable(budget=50.0)
        self._pending_restore = False
        self._unsaved: list[Autosave] = []
        self._reading = None  # the worker reading files, if any

        self.restore_label = message_label()
        self.restore_label.visible = False
        self.restore_choice = widgets.ComboBox(
            label="Unsaved table",
            choices=[],
            visible=False,
            tooltip="dose tables of windows that closed or crashed, newest first",
        )
        self.restore_button = widgets.PushButton(
            text="Restore the chosen table",
            tooltip="continue the chosen unsaved table in this window",
            visible=False,
        )
        self.fresh_button = widgets.PushButton(
            text="Start a new table (set the old ones aside)",
            visible=False,
            tooltip="the unsaved tables move to the set_aside folder beside the autosave",
        )
        self.add_layers_button = widgets.PushButton(
            text="Add selected image layers",
            tooltip="one row per image (or stack frame) of the selected layers, from "
            "their metadata",
        )
        self.add_files_button = widgets.PushButton(
            text="Add files…",
            tooltip="images, Velox .emd, DM, TIFF, MRC, SerialEM .mdoc, 4D STEM files",
        )
        self.remove_button = widgets.PushButton(
            text="Remove selected rows", tooltip="remove the selected image rows"
        )
        self.accumulation = widgets.ComboBox(
            label="Cumulative dose",
            tooltip="exposure: sum of the doses before each image; wall clock: by acquisition time",
            choices=ACCUMULATION_CHOICES,
            value="exposure",
        )
        self.budget = widgets.FloatSpinBox(
            label="Budget (e⁻/Å²)", value=50.0, min=0.0, max=1e9, step=10.0, tooltip="0 = no budget"
        )
        self.summary = message_label(label="Summary", value="no images yet")
        self.images_view = FrameTable(on_edit=self._image_edited, after_edit=self.refresh)
        self.calibration_view = FrameTable(
            on_edit=self._calibration_edited, after_edit=self.refresh
        )
        self.images_view.native.setMinimumHeight(220)
        self.voltage = widgets.FloatSpinBox(
            label="Voltage (kV)",
            tooltip="accelerating voltage of the calibration row, kV",
            value=300.0,
            min=1.0,
            max=3000.0,
            step=20.0,
        )
        self.spot = widgets.SpinBox(
            label="Spot size", tooltip="spot size of the calibration row", value=5, min=1, max=20
        )
        self.aperture = widgets.FloatSpinBox(
            label="C2 aperture (µm)", value=0.0, min=0.0, max=5000.0, step=10.0, tooltip="0 = any"
        )
        self.probe = widgets.LineEdit(
            label="Probe mode", tooltip="probe mode (e.g. micro, nano; blank = any)", value=""
        )
        self.current = widgets.FloatSpinBox(
            label="Current (pA)",
            tooltip="measured beam current, pA",
            value=0.0,
            min=0.0,
            max=1e9,
            step=10.0,
        )
        self.method = widgets.ComboBox(
            label="Measured with",
            tooltip="how the current was measured",
            choices=["Faraday cup", "screen", "camera counts", "typed"],
            value="Faraday cup",
        )
        self.add_current_button = widgets.PushButton(
            text="Add to current calibration", tooltip="add this current to the calibration table"
        )
        self.remove_current_button = widgets.PushButton(
            text="Remove selected calibration rows", tooltip="remove the selected calibration rows"
        )
        self.export_csv_button = widgets.PushButton(
            text="Export CSV…", tooltip="write the dose table to a CSV file"
        )
        self.export_excel_button = widgets.PushButton(
            text="Export Excel…",
            tooltip="write the dose table and its calibration to an Excel file",
        )
        self.import_csv_button = widgets.PushButton(
            text="Import CSV…", tooltip="add the rows of a dose table CSV (read in a worker)"
        )
        self.import_calibration_button = widgets.PushButton(
            text="Import current calibration CSV…",
            tooltip="add the rows of a current calibration CSV",
        )
        self.autosave_label = message_label(label="Autosave", value=str(self.autosave.path))
        self.status = message_label()
        images_label = message_label(value="Images (edit cells to correct or complete a row)")
        calibration_label = widgets.Label(value="Current calibration")
        self.extend(
            [
                self.restore_label,
                self.restore_choice,
                self.restore_button,
                self.fresh_button,
                self.add_layers_button,
                self.add_files_button,
                self.remove_button,
                self.accumulation,
                self.budget,
                self.summary,
                images_label,
                self.images_view.widget,
                calibration_label,
                self.calibration_view.widget,
                self.voltage,
                self.spot,
                self.aperture,
                self.probe,
                self.current,
                self.method,
                self.add_current_button,
                self.remove_current_button,
                self.export_csv_button,
                self.export_excel_button,
                self.import_csv_button,
                self.import_calibration_button,
                self.autosave_label,
                self.status,
            ]
        )
        from .plot import DosePlot  # matplotlib only once the widget is built

        self.plot = DosePlot(napari_viewer)
        self.content.layout().addWidget(self.plot.canvas)

        self.restore_button.changed.connect(lambda: self.restore())
        self.fresh_button.changed.connect(lambda: self.start_fresh())
        self.add_layers_button.changed.connect(lambda: self.add_layers())
        self.add_files_button.changed.connect(self._add_files_dialog)
        self.remove_button.changed.connect(self._remove_selected)
        self.accumulation.changed.connect(self._settings_changed)
        self.budget.changed.connect(self._settings_changed)
        self.add_current_button.changed.connect(lambda: self.add_current())
        self.remove_current_button.changed.connect(self._remove_selected_currents)
        self.export_csv_button.changed.connect(self._export_csv_dialog)
        self.export_excel_button.changed.connect(self._export_excel_dialog)
        self.import_csv_button.changed.connect(self._import_csv_dialog)
        self.import_calibration_button.changed.connect(self._import_calibration_dialog)
        # the lock goes with the window (a crashed process's lock is found stale by its pid)
        self._session = [self.autosave]
        session = self._session
        self.native.destroyed.connect(lambda *_: session[0].release())
        self._offer_restore()
        self.refresh(save=False)

    # -- autosave and restore ----------------------------------------------------------------
    def _offer_restore(self) -> None:
        """Offer every unsaved session (windows closed or crashed) that holds something."""
        choices = []
        for session in self.sessions.unsaved(exclude=self.autosave):
            try:
                saved, notes = session.load_readable()
            except EmcalError as exc:
                label = f"{session.path.name}: cannot be read ({exc})"
                choices.append((label, session))
                continue
            if len(saved) == 0 and len(saved.calibration) == 0:
                continue
            damaged = f" · damaged: {'; '.join(notes)}" if notes else ""
            label = (
                f"{session.modified:%Y-%m-%d %H:%M} · {len(saved)} image(s), "
                f"{len(saved.calibration)} current(s){damaged}"
            )
            choices.append((label, session))
        if not choices:
            return
        self._unsaved = [session for _, session in choices]
        self.restore_choice.choices = choices
        self.restore_choice.value = choices[0][1]
        self.restore_label.value = (
            f"{len(choices)} unsaved dose table(s) from windows that closed or crashed: "
            "restore one, or set them aside."
        )
        for widget in (self.restore_label, self.restore_choice, self.restore_button):
            widget.visible = True
        self.fresh_button.visible = True
        self._pending_restore = True

    def _close_offer(self) -> None:
        self._pending_restore = False
        for widget in (
            self.restore_label,
            self.restore_choice,
            self.restore_button,
            self.fresh_button,
        ):
            widget.visible = False

    def restore(self, session: Autosave | None = None) -> None:
        """Continue an unsaved table (the chosen one): this window takes over its file.

        A damaged file gives what can be read, with a message naming what was dropped; the
        file itself is kept aside first (``.previous``), so nothing is lost."""
        session = session if session is not None else self.restore_choice.value
        if session is None:
            return
        try:
            restored, notes = session.load_readable()
        except EmcalError as exc:
            self._error(str(exc))
            return
        if not session.lock():
            self._error(f"{session.path.name} was just taken by another window")
            return
        if notes:
            shutil.copy2(session.path, session.backup_path)
        # continue in the restored file; this window's own session is released (an empty
        # one is removed; one with rows stays on disk and is offered by the next window)
        own = self.autosave
        own.release()
        if len(self.table) == 0 and len(self.table.calibration) == 0:
            own.path.unlink(missing_ok=True)
        self.autosave = self._session[0] = session
        self.autosave_label.value = str(session.path)
        self._unsaved = [other for other in self._unsaved if other.path != session.path]
        self._close_offer()
        self._set_table(restored)
        message = f"restored {len(restored)} image(s) from {session.path.name}"
        if notes:
            message += f"; dropped: {'; '.join(notes)} (the file as it was: {session.backup_path})"
            show_warning(message)
        self.status.value = message

    def start_fresh(self) -> None:
        """Begin a new table; the unsaved ones move to the set_aside folder."""
        kept = [str(self.sessions.set_aside(session)) for session in self._unsaved]
        self._unsaved = []
        self._close_offer()
        if kept:
            self.status.value = f"the unsaved table(s) are kept in {Path(kept[0]).parent}"
        self.refresh()

    def _set_table(self, table: DoseTable) -> None:
        self.table = table
        self.accumulation.value = table.accumulation
        self.budget.value = table.budget or 0.0
        self.refresh()

    def _save(self) -> None:
        # this window's own file: the unsaved tables on offer are never written over
        try:
            self.autosave.save(self.table)
        except OSError as exc:
            self._error(f"cannot autosave to {self.autosave.path}: {exc}")

    # -- adding and editing --------------------------------------------------------------------
    def add_layers(self, layers=None) -> int:
        """Add the selected (or given) image layers, one row per image or stack frame."""
        layers = [
            layer
            for layer in (layers if layers is not None else self.viewer.layers.selection)
            if is_greyscale_image(layer)
        ]
        if not layers:
            self._error("Select one or more image layers first.")
            return 0
        count = 0
        for layer in layers:
            metadata = layer.metadata
            for row in rows_from_layer(layer.name, layer.data.shape, metadata):
                self.table.add(**row)
                count += 1
            self._merge_calibration(metadata)
        self.refresh()
        self.status.value = f"added {count} row(s) from {len(layers)} layer(s)"
        return count

    def _merge_calibration(self, metadata) -> None:
        """Currents a layer carries (e.g. the sample's Faraday-cup readings) join the
        calibration when it does not hold them yet."""
        records = (metadata.get("emcal", metadata) or {}).get("current_calibration")
        if not records:
            return
        known = self.table.calibration.frame
        added = 0
        for record in records:
            same = known[
                (known.voltage_kv == record.get("voltage_kv")) & (known.spot == record.get("spot"))
            ]
            if same.empty:
                self.table.calibration.add(
                    **{k: v for k, v in record.items() if k in CALIBRATION_COLUMNS}
                )
                added += 1
        if added:
            show_info(f"{added} current calibration row(s) taken from the layer's metadata")

    # -- reading files in a worker ----------------------------------------------------------
    @property
    def busy(self) -> bool:
        """Whether files are being read."""
        return self._reading is not None

    def _in_background(self, label: str, read, apply, steps: int | None = None):
        """``read()`` in a worker thread, then ``apply(value)`` in the GUI thread. One read
        at a time. With ``steps``, ``read`` is a generator yielding once per step, shown in
        napari's activity dock. Returns the worker."""
        if self._reading is not None:
            self._error("still reading the previous files: wait for them to finish")
            return None
        self.status.value = f"{label}…"

        def done(value):
            self._reading = None
            apply(value)

        def failed(exc):
            self._reading = None
            detail = str(exc) if isinstance(exc, EmcalError) else f"{type(exc).__name__}: {exc}"
            self._error(f"{label} failed: {detail}")

        steps = {"total": steps, "desc": label} if steps else None
        self._reading = start_worker(read, done, failed, progress=steps)
        return self._reading

    def add_files(self, paths):
        """Add rows read from files (a SerialEM .mdoc gives one row per image), reading
        them in a worker; returns the worker (None when another read is running)."""
        paths = [Path(p) for p in paths]

        def read():
            rows, errors = [], []
            for path in paths:
                try:
                    rows.extend(rows_from_file(path))
                except EmcalError as exc:
                    errors.append(str(exc))
                yield
            return rows, errors

        def apply(value):
            rows, errors = value
            for row in rows:
                self.table.add(**row)
            self.refresh()
            self.status.value = f"added {len(rows)} row(s) from {len(paths)} file(s)"
            if errors:
                self._error(f"{len(errors)} file(s) not added: {errors[0]}")

        return self._in_background(f"reading {len(paths)} file(s)", read, apply, len(paths))

    def _image_edited(self, row: int, column: str, text: str) -> None:
        if column in DERIVED:
            self._error(f"{column} is computed; edit the conditions instead")
            return
        try:
            self.table.update(row, **{column: text})
        except EmcalError as exc:
            self._error(f"row {row + 1}, {column}: {exc}")

    def _calibration_edited(self, row: int, column: str, text: str) -> None:
        try:
            self.table.calibration.update(row, **{column: text})
        except EmcalError as exc:
            self._error(f"calibration row {row + 1}, {column}: {exc}")

    def add_current(self) -> None:
        """Add the typed current measurement to the calibration."""
        try:
            self.table.calibration.add(
                self.voltage.value,
                self.spot.value,
                self.current.value,
                aperture_um=self.aperture.value or None,
                probe=self.probe.value,
                method=self.method.value,
                date=pd.Timestamp.now().isoformat(timespec="seconds"),
            )
        except EmcalError as exc:
            self._error(str(exc))
            return
        self.refresh()

    def _remove_selected(self, event=None):
        rows = self.images_view.selected_rows()
        for row in reversed(rows):
            self.table.remove(row)
        self.refresh()
        self.status.value = f"removed {len(rows)} row(s)"

    def _remove_selected_currents(self, event=None):
        for row in reversed(self.calibration_view.selected_rows()):
            self.table.calibration.remove(row)
        self.refresh()

    def _settings_changed(self, event=None):
        self.table.accumulation = self.accumulation.value
        self.table.budget = self.budget.value or None
        self.refresh()

    # -- display -------------------------------------------------------------------------------
    def refresh(self, save: bool = True) -> None:
        """Show the table, the calibration, the summary and the plot; autosave."""
        frame = self.table.frame
        if len(frame) == 0:
            self.show_hint("Add selected image layers, or Add files… (images, .mdoc, 4D files)")
        elif len(self.table.calibration) == 0 and frame["current_pa"].isna().any():
            self.show_hint("add a beam current (Faraday cup or screen) so the dose is computed")
        else:
            self.show_hint("export the table when done (CSV, Excel); it is autosaved meanwhile")
        shown = frame[list(SHOWN)]
        colours = {row: PROBLEM_COLOUR for row in frame.index[frame.problems != ""]}
        colours.update({row: OVER_BUDGET_COLOUR for row in frame.index[frame.over_budget]})
        self.images_view.show(shown, colours)
        self.calibration_view.show(self.table.calibration.frame)
        self.summary.value = _summary(frame, self.table.budget)
        self.plot.update(frame, self.table.budget)
        if save:
            self._save()

    # -- files -----------------------------------------------------------------------------------
    def export_csv(self, path) -> None:
        self.table.to_csv(path)
        self.status.value = f"table saved to {path}"

    def export_excel(self, path) -> None:
        self.table.to_excel(path)
        self.status.value = f"table and current calibration saved to {path}"

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
            self.table.add_rows(imported.rows)
            self.refresh()
            self.status.value = f"{len(imported)} row(s) added from {path}. {notes}".strip()

        return self._in_background(f"importing {Path(path).name}", read, apply)

    def import_calibration(self, path):
        """Add the currents of a calibration CSV, read in a worker; returns the worker."""

        def apply(calibration):
            self.table.calibration.add_rows(calibration.rows)
            self.refresh()
            self.status.value = f"{len(calibration)} current(s) added from {path}"

        return self._in_background(
            f"importing {Path(path).name}", lambda: CurrentCalibration.from_csv(path), apply
        )

    def _add_files_dialog(self, event=None):
        from qtpy.QtWidgets import QFileDialog

        paths, _ = QFileDialog.getOpenFileNames(
            self.native,
            "Add images to the dose table",
            "",
            "Images and logs (*.emd *.dm3 *.dm4 *.tif "
            "*.tiff *.mrc *.ser *.mdoc *.npy *.mib *.hdr "
            "*.h5 *.hdf5 *.blo);;All files (*)",
        )
        if paths:
            self.add_files([Path(p) for p in paths])

    def _export_csv_dialog(self, event=None):
        path = save_path(self.native, "Export the dose table", "dose_table.csv")
        if path:
            self.export_csv(path)

    def _export_excel_dialog(self, event=None):
        path = save_path(self.native, "Export the dose table", "dose_table.xlsx", "Excel (*.xlsx)")
        if path:
            self.export_excel(path)

    def _import_csv_dialog(self, event=None):
        path = open_path(self.native, "Import a dose table")
        if path:
            self.import_csv(path)

    def _import_calibration_dialog(self, event=None):
        path = open_path(self.native, "Import a current calibration")
        if path:
            self.import_calibration(path)

    def _error(self, message: str) -> None:
        self.status.value = message
        show_error(message)


def _summary(frame, budget) -> str:
    if frame.empty:
        return "no images yet"
    text = f"{len(frame)} image(s)"
    finite = frame.cumulative_e_A2.dropna()
    if len(finite):
        text += f", cumulative {finite.iloc[-1]:.4g} e⁻/Å²"
        if frame.cumulative_lower_bound.any():
            text += " (at least: some doses unknown)"
    if budget:
        over = frame.index[frame.over_budget]
        text += (
            f"; budget {budget:g} e⁻/Å² exceeded from {frame.image[over[0]]}"
            if len(over)
            else f"; within the {budget:g} e⁻/Å² budget"
        )
    problems = int((frame.problems != "").sum())
    if problems:
        text += f"\n{problems} row(s) need attention (see 'problems')"
    return text
