"""Keeping an accepted calibration in the history, from any widget: the previous value at
the same setting beside the new one, and a napari warning when it drifted."""

from __future__ import annotations

from napari.utils.notifications import show_warning

from ..errors import EmcalError
from ..history import TOLERANCES, History

__all__ = ["keep_in_history"]


def keep_in_history(tool: str, values: dict, uncertainty: dict, **where) -> str:
    """Record the calibration; a sentence for the widget's status (previous value and
    drift), or why it could not be recorded. Never raises: the calibration itself stands."""
    try:
        previous, warnings = History().keep(tool, values, uncertainty, **where)
    except EmcalError as exc:
        return f"not kept in the history: {exc}"
    for warning in warnings:
        show_warning(f"Calibration drift: {warning}")
    if previous is None:
        return "kept in the history (the first at this setting)"
    shown = ", ".join(
        f"{name} {value:.6g}" if isinstance(value, float) else f"{name} {value}"
        for name, value in previous.values.items()
        if name in TOLERANCES[tool]
    )
    drift = f"; DRIFT: {'; '.join(warnings)}" if warnings else ""
    return f"kept in the history; previous ({previous.time[:16]}): {shown}{drift}"


#: The quantities of each tool a drift plot offers, with how they are shown.
QUANTITIES = {
    "overfocus": {
        "scan_rotation_deg": ("Scan rotation", "°", 1.0),
        "overfocus_m": ("Overfocus", "µm", 1e6),
        "cx_px": ("Beam centre x", "px", 1.0),
        "cy_px": ("Beam centre y", "px", 1.0),
    },
    "pixel_size": {
        "pixel_size_nm": ("Pixel size", "nm", 1.0),
        "angle_deg": ("Grid angle", "°", 1.0),
    },
    "high_defocus": {"scale": ("Scale", "", 1.0), "rotation_deg": ("Rotation", "°", 1.0)},
    "current": {"current_pa": ("Beam current", "pA", 1.0)},
    "camera_length": {
        "camera_length_m": ("Camera length", "mm", 1e3),
        "axis_ratio": ("Ellipse axis ratio", "", 1.0),
    },
    "image_shift": {
        f"d{a}_d{b}": (f"d{a}/d{b}", "px", 1.0) for a in ("col", "row") for b in ("x", "y")
    },
    "stage_shift": {
        f"d{a}_d{b}": (f"d{a}/d{b}", "px/µm", 1.0) for a in ("col", "row") for b in ("x", "y")
    },
    "high_defocus_is": {"scale": ("Scale", "", 1.0), "rotation_deg": ("Rotation", "°", 1.0)},
    "beam_intensity": {f"c{i}": (f"Fit coefficient c{i}", "", 1.0) for i in range(3)},
    "dead_time": {"dead_time_s": ("Shutter dead time", "ms", 1e3)},
}


class DriftView:
    """The calibration history of one tool in a dock: a quantity against date, with
    standard errors as error bars, drawn on demand (*Show calibration history*).

    ``widgets`` (a magicgui Container) goes into the dock; ``setting()`` gives the setting
    whose entries are shown ("" = all).
    """

    def __init__(self, viewer, tool: str, setting=lambda: None):
        from magicgui import widgets as mg

        from .plots import ThemedPlot

        self.tool, self._setting = tool, setting
        names = QUANTITIES[tool]
        self.shown = mg.CheckBox(
            text="Show calibration history",
            value=False,
            tooltip="earlier calibrations of this tool from the history database, against "
            "date, with their standard errors",
        )
        self.quantity = mg.ComboBox(
            label="History of",
            choices=[
                (f"{label} ({unit})" if unit else label, key)
                for key, (label, unit, _) in names.items()
            ],
            tooltip="the calibrated value to plot against date",
            visible=False,
        )
        self.widgets = mg.Container(widgets=[self.shown, self.quantity], labels=True)
        self.widgets.margins = (0, 0, 0, 0)
        self.plot = ThemedPlot(viewer, min_height=200)
        self.plot.redraw = self.refresh
        self.axes = self.plot.figure.add_subplot(1, 1, 1)
        self.widgets.native.layout().addWidget(self.plot.canvas)
        self.plot.canvas.setVisible(False)
        self.shown.changed.connect(self._toggle)
        self.quantity.changed.connect(lambda *_: self.refresh())

    def _toggle(self, *_):
        self.quantity.visible = self.shown.value
        self.plot.canvas.setVisible(self.shown.value)
        self.refresh()

    def points(self) -> tuple[list, list, list]:
        """(times, values, standard errors) of the chosen quantity, oldest first."""
        from datetime import datetime

        from ..history import History

        key = self.quantity.value
        scale = QUANTITIES[self.tool][key][2]
        try:
            entries = History().entries(self.tool, setting=self._setting())
        except EmcalError:
            return [], [], []
        rows = [e for e in entries if isinstance(e.values.get(key), (int, float))]
        times = [datetime.fromisoformat(e.time) for e in rows]
        values = [float(e.values[key]) * scale for e in rows]
        errors = [float(e.uncertainty.get(key) or 0.0) * scale for e in rows]
        return times, values, errors

    def refresh(self) -> None:
        """Redraw from the history (when shown)."""
        if not self.shown.value:
            return
        import matplotlib.dates as mdates

        times, values, errors = self.points()
        if not times:
            self.plot.show_empty("no calibration of this kind kept yet")
            return
        self.plot.show_axes()
        label, unit, _ = QUANTITIES[self.tool][self.quantity.value]
        axes = self.axes
        axes.clear()
        axes.errorbar(times, values, yerr=errors, fmt="o-", capsize=3, color="#4ad2ff")
        axes.set_ylabel(f"{label} ({unit})" if unit else label)
        axes.set_title(
            "dates in UTC", fontsize="small", loc="left", color=self.plot.colours["text"]
        )
        if len(times) == 1:  # a single date: a day either side, not a zero-width axis
            from datetime import timedelta

            axes.set_xlim(times[0] - timedelta(days=1), times[0] + timedelta(days=1))
        locator = mdates.AutoDateLocator(minticks=2, maxticks=5)
        axes.xaxis.set_major_locator(locator)
        axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        self.plot.style()
        self.plot.canvas.draw_idle()
