"""Matplotlib plots in a dock that follow napari's theme, say when they are empty, and
pick a time unit that suits the span (written once for every widget's plot)."""

from __future__ import annotations

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure

__all__ = ["ThemedPlot", "time_unit"]


def time_unit(span_s: float) -> tuple[str, float]:
    """A unit for a time axis spanning ``span_s`` seconds: (name, seconds per unit)."""
    if span_s < 120:
        return "s", 1.0
    if span_s < 2 * 3600:
        return "min", 60.0
    if span_s < 2 * 86400:
        return "h", 3600.0
    return "days", 86400.0


class ThemedPlot:
    """A figure in the dock, coloured like napari's current theme (and following it)."""

    def __init__(self, viewer=None, *, figsize=(4.0, 2.8), min_height: int = 220):
        self.figure = Figure(figsize=figsize, tight_layout=True)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(min_height)
        self.theme = getattr(viewer, "theme", "dark") if viewer is not None else "dark"
        self._message = None
        if viewer is not None:
            viewer.events.theme.connect(self._theme_changed)

    # subclasses draw, then call style(); they redraw on a theme change
    def redraw(self) -> None:  # pragma: no cover - overridden
        self.style()

    def _theme_changed(self, event=None) -> None:
        self.theme = event.value if event is not None else self.theme
        self.redraw()

    @property
    def colours(self) -> dict:
        from napari.utils.theme import get_theme

        try:
            theme = get_theme(self.theme)
        except (KeyError, ValueError):
            theme = get_theme("dark")
        return {"background": theme.background.as_hex(), "text": theme.text.as_hex()}

    def style(self) -> None:
        """Colour the figure, axes, ticks, labels and legends like the theme."""
        colours = self.colours
        self.figure.patch.set_facecolor(colours["background"])
        for axes in self.figure.axes:
            axes.set_facecolor(colours["background"])
            axes.tick_params(colors=colours["text"], which="both")
            for spine in axes.spines.values():
                spine.set_color(colours["text"])
            axes.xaxis.label.set_color(colours["text"])
            if axes.yaxis.label.get_color() in ("black", "#000000", "k"):
                axes.yaxis.label.set_color(colours["text"])
            legend = axes.get_legend()
            if legend is not None:
                legend.get_frame().set_facecolor(colours["background"])
                for text in legend.get_texts():
                    text.set_color(colours["text"])
        if self._message is not None:
            self._message.set_color(colours["text"])

    def show_empty(self, message: str) -> None:
        """No data: hide the axes and say so, instead of empty axes with ±0.04 limits."""
        for axes in self.figure.axes:
            axes.set_visible(False)
        if self._message is None:
            self._message = self.figure.text(0.5, 0.5, message, ha="center", va="center")
        self._message.set_text(message)
        self._message.set_visible(True)
        self.style()
        self.canvas.draw_idle()

    def show_axes(self) -> None:
        for axes in self.figure.axes:
            axes.set_visible(True)
        if self._message is not None:
            self._message.set_visible(False)
