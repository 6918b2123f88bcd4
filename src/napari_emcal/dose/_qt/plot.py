"""Flux and cumulative dose against time (matplotlib in the dock)."""

from __future__ import annotations

import numpy as np

from ..._qt.plots import ThemedPlot, time_unit

__all__ = ["DosePlot"]


class DosePlot(ThemedPlot):
    """Flux (left axis, points) and cumulative dose (right axis, steps) against time."""

    def __init__(self, viewer=None):
        super().__init__(viewer, figsize=(4.0, 2.8), min_height=220)
        self.flux_axes = self.figure.add_subplot(1, 1, 1)
        self.dose_axes = self.flux_axes.twinx()
        self._last = None

    def redraw(self) -> None:
        if self._last is not None:
            self.update(*self._last)

    def update(self, frame, budget: float | None) -> None:
        self._last = (frame, budget)
        flux_axes, dose_axes = self.flux_axes, self.dose_axes
        flux_axes.clear()
        dose_axes.clear()
        timed = frame[frame["elapsed_s"].notna()]
        if timed.empty:
            self.show_empty(
                "no images with a time yet" if len(frame) else "add images to see their dose"
            )
            return
        self.show_axes()
        seconds = timed["elapsed_s"].to_numpy(float)
        unit, per = time_unit(float(np.nanmax(seconds) - np.nanmin(seconds)))
        minutes = seconds / per
        flux_axes.plot(minutes, timed["flux_e_A2_s"], "o", color="#1f77b4", ms=4)
        flux_axes.set_xlabel(f"time ({unit})")
        flux_axes.set_ylabel("flux (e⁻/Å²/s)", color="#1f77b4")
        cumulative = timed["cumulative_e_A2"].to_numpy(float)
        if len(minutes):
            dose_axes.step(minutes, cumulative, where="post", color="#d62728")
        if budget:
            dose_axes.axhline(budget, color="#d62728", ls="--", lw=1)
            dose_axes.text(
                0.01,
                budget,
                " budget",
                color="#d62728",
                va="bottom",
                fontsize="x-small",
                transform=dose_axes.get_yaxis_transform(),
            )
        dose_axes.set_ylabel("cumulative dose (e⁻/Å²)", color="#d62728")
        dose_axes.yaxis.set_label_position("right")
        if len(minutes) and np.isfinite(cumulative).any():
            top = np.nanmax(cumulative)
            dose_axes.set_ylim(0, max(top, budget or 0) * 1.1 or 1)
        self.style()
        self.canvas.draw_idle()
