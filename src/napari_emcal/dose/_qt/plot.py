"""Flux and cumulative dose against time (matplotlib in the dock)."""

from __future__ import annotations

import numpy as np
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure

__all__ = ["DosePlot"]


class DosePlot:
    """Flux (left axis, points) and cumulative dose (right axis, steps) against time."""

    def __init__(self):
        self.figure = Figure(figsize=(4.0, 2.8), tight_layout=True)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(220)
        self.flux_axes = self.figure.add_subplot(1, 1, 1)
        self.dose_axes = self.flux_axes.twinx()

    def update(self, frame, budget: float | None) -> None:
        flux_axes, dose_axes = self.flux_axes, self.dose_axes
        flux_axes.clear()
        dose_axes.clear()
        timed = frame[frame["elapsed_s"].notna()]
        minutes = timed["elapsed_s"].to_numpy(float) / 60
        flux_axes.plot(minutes, timed["flux_e_A2_s"], "o", color="#1f77b4", ms=4)
        flux_axes.set_xlabel("time (min)")
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
        self.canvas.draw_idle()
