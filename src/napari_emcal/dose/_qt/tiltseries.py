"""The dose dock's tilt-series section: one tilt series as a group, its scheme, a plot of
cumulative dose against tilt angle and acquisition order, and its exports.

Glue only: the tilts, scheme and files come from :mod:`napari_emcal.dose.tomography`.
"""

from __future__ import annotations

from magicgui import widgets

from ..._qt.common import message_label, save_path
from ..._qt.plots import ThemedPlot
from ...errors import EmcalError
from .. import tomography as tomo

__all__ = ["TiltSeriesControls", "TiltSeriesPlot"]

#: export name -> (file filter, default suffix)
EXPORTS = {
    "cumulative dose, tilt-angle order (text)": ("Text (*.txt)", "_dose_by_angle.txt"),
    "cumulative dose, acquisition order (text)": ("Text (*.txt)", "_dose_by_order.txt"),
    "RELION 5 tilt series (.star, pre-exposure)": ("STAR (*.star)", ".star"),
    "AreTomo angle file (-AngFile, order)": ("AreTomo angles (*.rawtlt *.tlt)", ".rawtlt"),
    "SerialEM .mdoc with the doses": ("SerialEM (*.mdoc)", "_dose.mdoc"),
}


class TiltSeriesPlot(ThemedPlot):
    """Cumulative dose per tilt against tilt angle (left) and acquisition order (right)."""

    def __init__(self, viewer=None):
        super().__init__(viewer, figsize=(4.0, 2.4), min_height=190)
        self.angle_axes, self.order_axes = self.figure.subplots(1, 2, sharey=True)
        self._tilts = None

    def redraw(self) -> None:
        self.update(self._tilts)

    def update(self, tilts) -> None:
        self._tilts = tilts
        if tilts is None or not len(tilts):
            self.show_empty("no tilt series in the table")
            return
        self.show_axes()
        tomo.plot_cumulative(tilts, self.angle_axes, self.order_axes)
        self.order_axes.set_ylabel("")
        self.style()
        self.canvas.draw_idle()


class TiltSeriesControls(widgets.Container):
    """*Tilt series* (which one), what it is (tilts, scheme, frame set), its plot and
    *Export…* in the chosen format; works on its dock (``host``): its ``table``,
    ``status`` and ``error()``."""

    def __init__(self, host):
        super().__init__(labels=True)
        self.margins = (0, 0, 0, 0)
        self.host = host
        self.series = widgets.ComboBox(
            label="Tilt series", choices=[], tooltip="the tilt series of the table (.mdoc stem)"
        )
        self.info = message_label(label="Tilts", value="no tilt series in the table")
        self.export_kind = widgets.ComboBox(
            label="Export", choices=list(EXPORTS), tooltip="the file a tomography program reads"
        )
        self.export_button = widgets.PushButton(
            text="Export tilt series…", tooltip="write the chosen file for this tilt series"
        )
        self.extend([self.series, self.info, self.export_kind, self.export_button])
        self.plot = TiltSeriesPlot(host.viewer)
        self.native.layout().addWidget(self.plot.canvas)
        self.series.changed.connect(lambda *_: self.show())
        self.export_button.changed.connect(self._export_dialog)

    def tilts(self):
        """The chosen series' tilts (``tomography.tilt_series``), or None with the reason
        shown."""
        if not self.series.value:
            return None
        try:
            return tomo.tilt_series(self.host.table, self.series.value)
        except EmcalError as exc:
            self.info.value = str(exc)
            return None

    def show(self) -> None:
        names = tomo.tilt_series_names(self.host.table)
        if list(self.series.choices) != names:
            current = self.series.value
            self.series.changed.disconnect()
            self.series.choices = names
            if current in names:
                self.series.value = current
            self.series.changed.connect(lambda *_: self.show())
        self.visible = bool(names)
        if not names:
            self.plot.update(None)
            return
        frame = self.host.table.frame
        rows = frame[(frame.series == self.series.value) & (frame.record == "tilt")]
        order = rows.sort_values("acquisition_order")
        scheme = tomo.recognise_scheme(order["tilt_angle_deg"].dropna())
        tilts = self.tilts()
        text = f"{len(rows)} tilts, {scheme}"
        if tilts is not None:
            text += f"; cumulative {tilts.cumulative_e_A2.iloc[-1]:.4g} e⁻/Å²"
            if tilts.cumulative_lower_bound.any():
                text += " (at least)"
            sets = frame[(frame.series == self.series.value) & (frame.record == "frame set")]
            if len(sets):
                text += f"\n{sets.relation.iloc[0]}"
            self.info.value = text
        else:
            self.info.value = f"{text}\n{self.info.value}"
        self.plot.update(tilts)

    def export(self, kind: str, path) -> str:
        """Write the chosen series as ``kind`` (a key of ``EXPORTS``); the status line."""
        tilts = tomo.tilt_series(self.host.table, self.series.value)
        name = self.series.value
        if kind.startswith("cumulative dose, tilt-angle"):
            written = tomo.write_cumulative_text(tilts, path, "angle")
        elif kind.startswith("cumulative dose, acquisition"):
            written = tomo.write_cumulative_text(tilts, path, "acquisition")
        elif kind.startswith("RELION"):
            written = tomo.write_relion_tilt_series_star(tilts, path, name)
        elif kind.startswith("AreTomo"):
            written, dose = tomo.write_aretomo_angles(tilts, path)
            return f"{written}: AreTomo -AngFile; give -ImgDose {dose:.4g}"
        else:
            frame = self.host.table.rows
            sources = frame.loc[frame.series == name, "source"]
            mdocs = [s for s in dict.fromkeys(sources) if str(s).lower().endswith(".mdoc")]
            if not mdocs:
                raise EmcalError(f"the .mdoc of {name} is not known: add the .mdoc file")
            written, sections = tomo.write_mdoc_doses(mdocs[0], tilts, path)
            return f"{written}: ExposureDose and PriorRecordDose in {sections} sections"
        return f"{kind} written to {written}"

    def _export_dialog(self, event=None):
        kind = self.export_kind.value
        filters, suffix = EXPORTS[kind]
        path = save_path(self.native, f"Export {kind}", f"{self.series.value}{suffix}", filters)
        if path is None:
            return
        try:
            self.host.status.value = self.export(kind, path)
        except (EmcalError, OSError) as exc:
            self.host.error(f"export failed: {exc}")
