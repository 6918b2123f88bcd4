"""Scale and rotation against defocus, with the table's interpolation curve (matplotlib)."""

from __future__ import annotations

import warnings

import numpy as np

from ..._qt.plots import ThemedPlot
from ...errors import CalibrationWarning, EmcalError
from ..table import IMAGE_SHIFT, HighDefocusTable

__all__ = ["CalibrationPlot"]


class CalibrationPlot(ThemedPlot):
    """Two small axes in the dock: scale and rotation against defocus (µm)."""

    def __init__(self, viewer=None):
        super().__init__(viewer, figsize=(4.0, 3.6), min_height=260)
        self.scale_axes, self.rotation_axes = self.figure.subplots(2, 1, sharex=True)
        self._last = None

    def redraw(self) -> None:
        if self._last is not None:
            args, kwargs = self._last
            self.update(*args, **kwargs)

    def show(self, table: HighDefocusTable, setting: dict, defocus_um: float, result=None) -> str:
        """The table with the curve for the beam ``setting`` typed (its probe only when the
        table has it, or several), and ``result`` (not accepted yet) at ``defocus_um``."""
        pending = None if result is None else (defocus_um, result.scale, result.rotation_deg)
        probes = set(table.frame["probe"])
        probe = setting["probe"] if (setting["probe"] in probes or len(probes) != 1) else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CalibrationWarning)
            return self.update(
                table,
                intensity=setting["intensity"],
                spot=setting["spot"],
                probe=probe,
                pending=pending,
            )

    def update(
        self,
        table: HighDefocusTable,
        *,
        intensity=None,
        spot=None,
        probe=None,
        pending: tuple[float, float, float] | None = None,
    ) -> str:
        """Redraw the table's points, the curve for the given setting and a pending result.

        Returns why the curve is missing ("" when it is drawn).
        """
        self._last = ((table,), dict(intensity=intensity, spot=spot, probe=probe, pending=pending))
        frame = table.frame
        if frame.empty and not pending:
            self.show_empty("no calibrations yet: measure a pair and Accept")
            return ""
        self.show_axes()
        axes = (self.scale_axes, self.rotation_axes)
        for ax in axes:
            ax.clear()
            ax.grid(alpha=0.3)
        self.scale_axes.set_ylabel("scale")
        self.rotation_axes.set_ylabel("rotation (°)")
        self.rotation_axes.set_xlabel("defocus (µm)")
        shown = frame if probe is None else frame[frame["probe"] == probe]
        # the image-shift calibrations beside the magnification ones: shown, not in the curve
        shifts = shown[shown["calibration"] == IMAGE_SHIFT]
        shown = shown[shown["calibration"] != IMAGE_SHIFT]
        for ax, column in zip(axes, ("scale", "rotation_deg")):
            ax.plot(
                shown["defocus_um"], shown[column], "o", color="#1f77b4", ms=5, label="calibrated"
            )
            if len(shifts):
                ax.plot(
                    shifts["defocus_um"],
                    shifts[column],
                    "^",
                    color="#2ca02c",
                    ms=5,
                    label="image shift",
                )
        why = ""
        defocus = np.concatenate(
            [[0.0], shown["defocus_um"].to_numpy(), [pending[0]] if pending else []]
        )
        if len(shown):
            span = np.linspace(min(defocus.min(), 0) * 1.15, max(defocus.max(), 0) * 1.15, 121)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # beyond the range: flat, as documented
                    curve = np.array([table.interpolate(d, intensity, spot, probe) for d in span])
            except EmcalError as exc:
                why = str(exc)
            else:
                self.scale_axes.plot(span, curve[:, 0], "-", color="#ff7f0e", label="interpolated")
                self.rotation_axes.plot(span, curve[:, 1], "-", color="#ff7f0e")
        if pending:
            self.scale_axes.plot(
                pending[0],
                pending[1],
                "s",
                mfc="none",
                color="#d62728",
                ms=8,
                label="this measurement",
            )
            self.rotation_axes.plot(pending[0], pending[2], "s", mfc="none", color="#d62728", ms=8)
        if len(shown) or len(shifts) or pending:
            self.scale_axes.legend(fontsize="x-small", loc="best")
        self.style()
        self.canvas.draw_idle()
        return why
