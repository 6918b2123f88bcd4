"""The "Dose table" dock widget: one row per image, flux and cumulative dose, autosaved.

Glue only: layers and files -> rows (:mod:`napari_emcal.dose.metadata`) -> a
:class:`DoseTable` shown as an editable table, with the current calibration beside it, a
plot, exports, and an atomic autosave after every change that is offered back after a crash
or restart.
"""

from __future__ import annotations

from pathlib import Path

from magicgui import widgets
from napari.utils.notifications import show_info

from ..._qt.common import is_greyscale_image, message_label
from ..._qt.dock import ToolDock
from ..._qt.layers import with_calibration
from ..._qt.tables import FrameTable
from ..._qt.tasks import start_worker
from ...errors import EmcalError
from ..autosave import Autosave, AutosaveFolder
from ..metadata import rows_from_file, rows_from_layer
from ..table import DERIVED, INPUT, DoseTable
from .currents import CurrentControls
from .files import DoseFiles
from .restore import RestoreOffer
from .tiltseries import TiltSeriesControls

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
    "cumulative_from",
    "over_budget",
    "problems",
    "record",
    "tilt_angle_deg",
    "acquisition_order",
    "relation",
    "current_used_pa",
    "current_from",
    *[c for c in INPUT if c not in ("image", "time", "mode", "record", "tilt_angle_deg")],
    "cumulative_lower_bound",
)
OVER_BUDGET_COLOUR = "#7a1f1f"
PROBLEM_COLOUR = "#6b5a00"
ACCUMULATION_CHOICES = [
    ("exposure only (sum of image doses)", "exposure"),
    ("beam-on wall clock (flux x time between images)", "wall_clock"),
]


class DoseWidget(ToolDock):
    """Electron flux and cumulative dose of every image, with a current calibration."""

    def __init__(self, napari_viewer, autosave: Autosave | None = None):
        super().__init__(napari_viewer)
        # one session file per window, locked while it is open (dose/autosave.py)
        if autosave is not None:
            self.sessions = AutosaveFolder(autosave.path.parent)
            self.autosave = autosave
            self.autosave.lock()
        else:
            self.sessions = AutosaveFolder()
            self.autosave = self.sessions.new_session()
        self.table = DoseTable(budget=50.0)
        self._reading = None  # the worker reading files, if any

        self.restore_offer = RestoreOffer(self)
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
            label="Budget (e⁻/Å²)",
            value=50.0,
            min=0.0,
            max=1e9,
            step=10.0,
            tooltip="cumulative dose the specimen may take, e⁻/Å²; 0 = no budget",
        )
        self.summary = message_label(label="Summary", value="no images yet")
        self.images_view = FrameTable(on_edit=self._image_edited, after_edit=self.refresh)
        self.images_view.native.setMinimumHeight(220)
        self.currents = CurrentControls(self)
        self.tilt_series = TiltSeriesControls(self)
        self.files = DoseFiles(self)
        self.autosave_label = message_label(label="Autosave", value=str(self.autosave.path))
        images_label = message_label(value="Images (edit cells to correct or complete a row)")
        self.extend(
            [
                self.restore_offer,
                self.add_layers_button,
                self.add_files_button,
                self.remove_button,
                self.accumulation,
                self.budget,
                self.summary,
                images_label,
                self.images_view.widget,
                self.tilt_series,
                self.currents,
                self.files,
                self.autosave_label,
                self.status,
            ]
        )
        from .plot import DosePlot  # matplotlib only once the widget is built

        self.plot = DosePlot(napari_viewer)
        self.content.layout().addWidget(self.plot.canvas)

        self.add_layers_button.changed.connect(lambda: self.add_layers())
        self.add_files_button.changed.connect(self._add_files_dialog)
        self.remove_button.changed.connect(self._remove_selected)
        self.accumulation.changed.connect(self._settings_changed)
        self.budget.changed.connect(self._settings_changed)
        # the lock goes with the window (a crashed process's lock is found stale by its pid)
        self._session = [self.autosave]
        session, folder = self._session, self.sessions
        # closed normally: not offered back as unsaved work (kept in closed/ instead)
        self.native.destroyed.connect(lambda *_: folder.close_normally(session[0]))
        self.restore_offer.offer()
        self.refresh(save=False)

    # -- autosave and restore ----------------------------------------------------------------
    def continue_in(self, session: Autosave) -> None:
        """Autosave to ``session`` (locked) from now on. This window's own session is
        released: an empty one is removed; one with rows stays on disk and is offered by
        the next window."""
        own = self.autosave
        own.release()
        if len(self.table) == 0 and len(self.table.calibration) == 0:
            own.path.unlink(missing_ok=True)
        self.autosave = self._session[0] = session
        self.autosave_label.value = str(session.path)

    def set_table(self, table: DoseTable) -> None:
        self.table = table
        self.accumulation.value = table.accumulation
        self.budget.value = table.budget or 0.0
        self.refresh()

    def _save(self) -> None:
        # this window's own file: the unsaved tables on offer are never written over
        try:
            self.autosave.save(self.table)
        except OSError as exc:
            self.error(f"cannot autosave to {self.autosave.path}: {exc}")

    # -- adding and editing --------------------------------------------------------------------
    def add_layers(self, layers=None) -> int:
        """Add the selected (or given) image layers, one row per image or stack frame."""
        layers = [
            layer
            for layer in (layers if layers is not None else self.viewer.layers.selection)
            if is_greyscale_image(layer)
        ]
        if not layers:
            self.error("Select one or more image layers first.")
            return 0
        count = 0
        for layer in layers:
            metadata = with_calibration(layer)  # whichever reader opened it
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
        added = self.table.calibration.merge(records)
        if added:
            show_info(f"{added} current calibration row(s) taken from the layer's metadata")

    # -- reading files in a worker ----------------------------------------------------------
    @property
    def busy(self) -> bool:
        """Whether files are being read."""
        return self._reading is not None

    def in_background(self, label: str, read, apply, steps: int | None = None):
        """``read()`` in a worker thread, then ``apply(value)`` in the GUI thread. One read
        at a time. With ``steps``, ``read`` is a generator yielding once per step, shown in
        napari's activity dock. Returns the worker."""
        if self._reading is not None:
            self.error("still reading the previous files: wait for them to finish")
            return None
        self.status.value = f"{label}…"

        def done(value):
            self._reading = None
            apply(value)

        def failed(exc):
            self._reading = None
            detail = str(exc) if isinstance(exc, EmcalError) else f"{type(exc).__name__}: {exc}"
            self.error(f"{label} failed: {detail}")

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
                self.error(f"{len(errors)} file(s) not added: {errors[0]}")

        return self.in_background(f"reading {len(paths)} file(s)", read, apply, len(paths))

    def _image_edited(self, row: int, column: str, text: str) -> None:
        if column in DERIVED:
            self.error(f"{column} is computed; edit the conditions instead")
            return
        try:
            self.table.update(row, **{column: text})
        except EmcalError as exc:
            self.error(f"row {row + 1}, {column}: {exc}")

    def _remove_selected(self, event=None):
        rows = self.images_view.selected_rows()
        for row in reversed(rows):
            self.table.remove(row)
        self.refresh()
        self.status.value = f"removed {len(rows)} row(s)"

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
        self.currents.show()
        self.tilt_series.show()
        self.summary.value = self.table.summary()
        self.plot.update(frame, self.table.budget)
        if save:
            self._save()

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
