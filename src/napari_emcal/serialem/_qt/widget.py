"""The "SerialEM calibrations" dock: a recorded series -> a calibration -> SerialEM's lines.

Glue only: the series (``STACK.mrc`` with its ``.mdoc``) is read by
:func:`~napari_emcal.serialem.read_series` and shown as an image stack; the records with
their settings and measured shifts are listed; the chosen calibration runs in a worker;
a plot shows measured against predicted positions (or the intensity and dead-time fits);
*Save for SerialEM…* writes the lines; *Accept* keeps the calibration in the history,
with a warning when it drifted from the last one at the same setting.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path

import numpy as np
from magicgui import widgets

from ..._qt.common import message_label, open_path, save_path
from ..._qt.dock import ToolDock
from ..._qt.history import DriftView, keep_in_history
from ..._qt.plots import ThemedPlot
from ...errors import EmcalError, InvalidParameterError
from ..measure import compute, summary
from ..series import SERIES_KEY

__all__ = ["SerialEMWidget", "SERIES_KEY"]

CALIBRATIONS = {
    "Image shift": "image_shift",
    "Stage shift": "stage_shift",
    "High-defocus image shift": "high_defocus_is",
    "Beam intensity": "beam_intensity",
    "Shutter dead time": "dead_time",
}
COLUMNS = (
    "record",
    "IS x",
    "IS y",
    "stage x µm",
    "stage y µm",
    "defocus µm",
    "intensity",
    "exposure s",
    "mag index",
    "binning",
    "measured col px",
    "measured row px",
    "predicted col px",
    "predicted row px",
    "residual px",
)


def series_path(layer) -> str | None:
    """The series a layer shows (its ``metadata["emcal"]["serialem_series"]``), or None."""
    metadata = getattr(layer, "metadata", None) or {}
    return (metadata.get("emcal") or {}).get(SERIES_KEY)


def _is_series(layer) -> bool:
    return series_path(layer) is not None


def _number(value, digits: int = 4):
    return "" if value is None else round(float(value), digits)


class SeriesPlot(ThemedPlot):
    """Measured against predicted positions, or a fit's points and curve."""

    def __init__(self, viewer):
        super().__init__(viewer, figsize=(4.0, 3.0), min_height=240)
        self.axes = self.figure.add_subplot(1, 1, 1)
        self.content = None
        self.show_empty("measure a calibration to see its points")

    def show(self, kind: str, result) -> None:
        self.content = (kind, result)
        self.redraw()

    def redraw(self) -> None:
        if self.content is None:
            return
        kind, result = self.content
        self.show_axes()
        axes = self.axes
        axes.clear()
        if kind in ("image_shift", "stage_shift"):
            _shift_plot(axes, result)
        elif kind == "high_defocus_is":
            _shift_plot(axes, result.focus, "focus")
            _shift_plot(axes, result.defocused, "defocus", marker="s")
        elif kind == "beam_intensity":
            log = np.log(result.currents)
            axes.plot(log, result.intensities, "o", color="#4ad2ff", label="records")
            grid = np.linspace(log.min(), log.max(), 100)
            axes.plot(
                grid,
                result.coefficients @ [np.ones_like(grid), grid, grid**2],
                "-",
                color="#ffb000",
                label="quadratic fit",
            )
            axes.set_xlabel("ln(current / counts per px per s)")
            axes.set_ylabel("intensity")
            axes.legend(fontsize="small", loc="best", framealpha=0.6)
        elif kind == "dead_time":
            axes.plot(result.exposures_s, result.counts, "o", color="#4ad2ff", label="records")
            grid = np.linspace(min(0.0, result.dead_time_s), result.exposures_s.max(), 50)
            axes.plot(
                grid,
                result.rate * grid + result.intercept,
                "-",
                color="#ffb000",
                label=f"dead time {result.dead_time_s * 1e3:.2f} ms",
            )
            axes.axhline(0, color="grey", lw=0.5)
            axes.set_xlabel("exposure (s)")
            axes.set_ylabel("mean counts")
            axes.legend(fontsize="small", loc="best", framealpha=0.6)
        self.style()
        self.canvas.draw_idle()


def _shift_plot(axes, fit, label: str = "", marker: str = "o") -> None:
    measured, predicted = fit.positions, fit.predicted
    axes.plot(
        predicted[:, 0],
        predicted[:, 1],
        marker,
        mfc="none",
        color="#ffb000",
        label=f"predicted {label}".strip(),
    )
    axes.plot(
        measured[:, 0],
        measured[:, 1],
        "+",
        color="#4ad2ff",
        ms=9,
        label=f"measured {label}".strip(),
    )
    axes.plot(fit.drift[:, 0], fit.drift[:, 1], "-", color="grey", lw=1, label="drift")
    axes.set_xlabel("col (unbinned px)")
    axes.set_ylabel("row (unbinned px)")
    axes.invert_yaxis()  # rows down, as napari shows the image
    axes.set_aspect("equal", adjustable="datalim")
    axes.legend(fontsize="small", loc="best", framealpha=0.6)


class SerialEMWidget(ToolDock):
    """SerialEM's calibrations from a recorded series."""

    def __init__(self, napari_viewer):
        super().__init__(napari_viewer)
        self.series = None
        self._cache = {}  # path -> Series
        self.result = None  # (kind, result object, SerialEM lines, history entry)
        self.open_button = widgets.PushButton(
            text="Open series…",
            tooltip="STACK.mrc with STACK.mrc.mdoc beside it (or the .mdoc): read the stack "
            "and its settings, show the stack",
        )
        self.layer = self.layer_picker(
            "Series layer", "a stack opened here or the sample series", _is_series
        )
        self.calibration = widgets.ComboBox(
            label="Calibration",
            choices=list(CALIBRATIONS),
            tooltip="what the series was recorded for: image shift (nine records, every other "
            "unshifted), stage shift (long moves in steps), high-defocus image shift (two "
            "defocus values), beam intensity (no specimen, intensity varies), dead time "
            "(exposure varies)",
        )
        self.defocused = self.layer_picker(
            "Defocused series",
            "for a high-defocus image-shift calibration: the series at high defocus (the "
            "series above is the one near focus); the same layer: one series whose Defocus "
            "takes two values",
            _is_series,
        )
        self.prior = widgets.LineEdit(
            label="Prior matrix",
            value="",
            tooltip="optional: dcol/dx dcol/dy drow/dx drow/dy (unbinned px per unit), e.g. "
            "the current calibration; peaks are looked for near what it predicts (needed "
            "for a periodic specimen)",
        )
        self.measure_button = widgets.PushButton(text="Measure", tooltip="run in a worker")
        self.task = self.long_task()
        self.result_label = message_label("Result", "—")
        self.records = widgets.Table(value={"data": [], "index": [], "columns": list(COLUMNS)})
        self.records.native.setMinimumHeight(180)
        self.records.read_only = True
        self.records.tooltip = (
            "each record's settings from the .mdoc and, after Measure, its measured and "
            "predicted position (unbinned px of the stored array) and residual"
        )
        self.save_button = widgets.PushButton(
            text="Save for SerialEM…",
            tooltip="the result as SerialEM's lines (SerialEMcalibrations.txt; ShutterDeadTime "
            "is a camera property of SerialEMproperties.txt)",
            enabled=False,
        )
        self.table_button = widgets.PushButton(
            text="Add to high-defocus table",
            tooltip="the result, as an 'image shift' row, into the High-defocus mag dock's table",
            enabled=False,
            visible=False,
        )
        #: ``callable(HighDefocusIS.table_row()) -> str``, set by the napari glue (this tool
        #: does not know the high-defocus tool's table); the button shows when it is set
        self.to_high_defocus_table = None
        self._names = None  # the focus and defocused series measured
        self.accept_button = widgets.PushButton(
            text="Accept into history",
            tooltip="keep the calibration in the history; warns when it drifted from the "
            "last one at the same setting",
            enabled=False,
        )
        self.histories = {
            tool: DriftView(napari_viewer, tool, self._history_setting)
            for tool in CALIBRATIONS.values()
        }
        self.extend(
            [
                self.open_button,
                self.layer,
                self.calibration,
                self.defocused,
                self.prior,
                self.measure_button,
                self.progress,
                self.cancel_button,
                self.result_label,
                self.records,
                self.save_button,
                self.table_button,
                self.accept_button,
                *[h.widgets for h in self.histories.values()],
                self.status,
            ]
        )
        self.plot = SeriesPlot(napari_viewer)
        self.content.layout().addWidget(self.plot.canvas)
        self.open_button.changed.connect(lambda: self._ask_open())
        self.layer.changed.connect(self._layer_changed)
        self.calibration.changed.connect(self._calibration_changed)
        self.measure_button.changed.connect(lambda: self.run())
        self.save_button.changed.connect(lambda: self.save())
        self.accept_button.changed.connect(lambda: self.accept())
        self.table_button.changed.connect(lambda: self.add_to_high_defocus_table())
        self._calibration_changed()
        self._layer_changed()
        if self.series is None:
            self.show_hint(
                "open a series SerialEM recorded (STACK.mrc with its .mdoc), or File > Open "
                "Sample > SerialEM image-shift series"
            )

    # -- the series --------------------------------------------------------------------------
    def _ask_open(self) -> None:
        path = open_path(
            self.native, "Open a SerialEM series", "SerialEM series (*.mrc *.st *.mdoc)"
        )
        if path is not None:
            self.open(path)

    def open(self, path) -> bool:
        """Read a series from ``path`` and show its stack as a layer."""
        from ..series import read_series

        try:
            series = read_series(path)
        except EmcalError as exc:
            self.error(str(exc))
            return False
        images = [r.image for r in series.records]
        if any(image is None for image in images):
            self.error(f"{Path(path).name}: not every record has its image")
            return False
        name = (series.images or series.mdoc).name
        existing = [layer for layer in self.viewer.layers if series_path(layer) == str(path)]
        if existing:
            layer = existing[0]
        else:
            layer = self.viewer.add_image(
                np.asarray(images),
                name=name,
                metadata={"emcal": {SERIES_KEY: str(path)}},
            )
        self.series = self._cache[str(path)] = series
        self.layer.reset_choices()
        self.defocused.reset_choices()
        self.layer.value = layer
        self._show_records()
        return True

    def _layer_changed(self, event=None) -> None:
        layer = self.layer.value
        path = series_path(layer) if layer is not None else None
        if path is None:
            return
        if self._cache.get(path) is not self.series or self.series is None:
            self.series = self._load(path)
            if self.series is None:
                return
        self.result = None
        self.save_button.enabled = self.accept_button.enabled = self.table_button.enabled = False
        self._show_records()
        self.show_hint("choose what the series calibrates, then Measure")

    def _load(self, path):
        """The series at ``path`` (read once), or None with the reason shown."""
        from ..series import read_series

        if path not in self._cache:
            try:
                self._cache[path] = read_series(path)
            except EmcalError as exc:
                self.error(str(exc))
                return None
        return self._cache[path]

    def _calibration_changed(self, event=None) -> None:
        kind = CALIBRATIONS[self.calibration.value]
        for tool, view in self.histories.items():
            view.widgets.visible = tool == kind
        self.prior.visible = kind in ("image_shift", "stage_shift", "high_defocus_is")
        self.defocused.visible = kind == "high_defocus_is"
        self.table_button.visible = kind == "high_defocus_is" and bool(self.to_high_defocus_table)

    def _show_records(self, fit=None) -> None:
        if self.series is None:
            return
        rows = []
        lookup = {}
        if fit is not None:
            for k, index in enumerate(fit.records):
                lookup[index] = (fit.positions[k], fit.predicted[k], fit.residuals[k])
        for r in self.series.records:
            measured, predicted, residual = lookup.get(r.index, (None, None, None))
            rows.append(
                [
                    r.index,
                    _number(r.image_shift and r.image_shift[0]),
                    _number(r.image_shift and r.image_shift[1]),
                    _number(r.stage and r.stage[0], 3),
                    _number(r.stage and r.stage[1], 3),
                    _number(r.defocus_um, 2),
                    _number(r.intensity, 5),
                    _number(r.exposure_s, 4),
                    "" if r.mag_index is None else r.mag_index,
                    _number(r.binning, 2),
                    "" if measured is None else round(float(measured[0]), 2),
                    "" if measured is None else round(float(measured[1]), 2),
                    "" if predicted is None else round(float(predicted[0]), 2),
                    "" if predicted is None else round(float(predicted[1]), 2),
                    "" if residual is None else round(float(residual), 3),
                ]
            )
        self.records.value = {
            "data": rows,
            "index": [str(r[0]) for r in rows],
            "columns": list(COLUMNS),
        }

    # -- measuring -----------------------------------------------------------------------------
    def _prior(self):
        text = self.prior.value.replace(",", " ").split()
        if not text:
            return None
        try:
            values = [float(v) for v in text]
        except ValueError:
            raise InvalidParameterError("the prior matrix must be four numbers") from None
        if len(values) != 4:
            raise InvalidParameterError("the prior matrix must be four numbers")
        return np.reshape(values, (2, 2))

    def run(self) -> bool:
        """Measure the chosen calibration in a worker; False with a message when it
        cannot start."""
        if self.series is None:
            self.error("Open a series first (STACK.mrc with its .mdoc), or the sample.")
            return False
        try:
            prior = self._prior()
        except EmcalError as exc:
            self.error(str(exc))
            return False
        kind = CALIBRATIONS[self.calibration.value]
        series = self.series
        defocused = None
        other = self.defocused.value
        focus_name = series_path(self.layer.value) or str(self.layer.value)
        self._names = (focus_name, focus_name)
        if kind == "high_defocus_is" and other is not None and other is not self.layer.value:
            defocused = self._load(series_path(other))
            if defocused is None:
                return False
            self._names = (focus_name, series_path(other))

        def work(report):
            report(0.05)
            return compute(series, kind, prior, defocused)

        self.save_button.enabled = self.accept_button.enabled = self.table_button.enabled = False
        return self.task.start(f"Measuring {self.calibration.value.lower()}", work, self._showing)

    def _show(self, value) -> None:
        deque(self._showing(value), maxlen=0)

    def _showing(self, value):
        """:meth:`_show` as a generator, the records and the plot in separate turns of the
        event loop (``tasks.Steps``): both at once would freeze the window."""
        kind, result, lines, entry = value
        self.result = value
        fit = result if kind in ("image_shift", "stage_shift") else None
        if kind == "high_defocus_is":
            fit = result.defocused
        self._show_records(fit)
        yield
        text = summary(kind, result)
        self.result_label.value = text + ("\nSerialEM: " + " / ".join(lines) if lines else "")
        self.plot.show(kind, result)
        self.save_button.enabled = bool(lines)
        self.accept_button.enabled = True
        self.table_button.enabled = kind == "high_defocus_is"
        self.status.value = "measured"
        self.show_hint("check the residuals and the plot; Save for SerialEM… or Accept")

    def save(self, path=None) -> Path | None:
        """Write the SerialEM lines (asks where unless ``path``)."""
        if self.result is None:
            return None
        kind, _, lines, _ = self.result
        if path is None:
            path = save_path(
                self.native, "Save for SerialEM", f"{kind}_serialem.txt", "Text (*.txt)"
            )
            if path is None:
                return None
        from ..._files import atomic_write_text

        atomic_write_text(path, "\n".join(lines) + "\n")
        self.status.value = f"{len(lines)} line(s) written to {Path(path).name}"
        return Path(path)

    def accept(self) -> str:
        """Keep the result in the history; the sentence shown (drift included)."""
        if self.result is None:
            return ""
        kind, _, _, (values, sigma, setting) = self.result
        message = keep_in_history(
            kind, values, sigma, setting=setting, source=str(self.layer.value or "")
        )
        self.status.value = message
        self.accept_button.enabled = False
        self.histories[kind].refresh()
        return message

    def add_to_high_defocus_table(self) -> str:
        """Put the high-defocus image shift measured into the high-defocus table (through
        :attr:`to_high_defocus_table`); the sentence shown."""
        if self.result is None or self.result[0] != "high_defocus_is":
            self.error("Measure a high-defocus image shift first.")
            return ""
        try:
            message = self.to_high_defocus_table(self.result[1].table_row(*self._names))
        except EmcalError as exc:
            self.error(str(exc))
            return ""
        self.table_button.enabled = False
        self.status.value = message
        return message

    def _history_setting(self):
        return None
