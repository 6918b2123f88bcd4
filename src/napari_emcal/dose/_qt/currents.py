"""The dose table's current calibration: measured beam currents per voltage, spot,
aperture and probe mode, shown and edited as a table, added from typed values."""

from __future__ import annotations

import pandas as pd
from magicgui import widgets

from ..._qt.common import message_label
from ..._qt.history import DriftView, keep_in_history
from ..._qt.tables import FrameTable
from ...errors import EmcalError
from ...history import current_setting

__all__ = ["CurrentControls"]

#: Background of calibration rows that conflict (one setting, currents that disagree).
CONFLICT_COLOUR = "#7a1f1f"


class CurrentControls(widgets.Container):
    """The calibration table and *Voltage*, *Spot size*, *C2 aperture*, *Probe mode*,
    *Current*, *Measured with*, *Add* and *Remove*; works on its dock's (``host``) table."""

    def __init__(self, host):
        super().__init__(labels=True)
        self.margins = (0, 0, 0, 0)
        self.host = host
        self.view = FrameTable(on_edit=self._edited, after_edit=host.refresh)
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
            label="C2 aperture (µm)",
            value=0.0,
            min=0.0,
            max=5000.0,
            step=10.0,
            tooltip="condenser aperture of the calibration row, µm; 0 = any",
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
        self.add_button = widgets.PushButton(
            text="Add to current calibration", tooltip="add this current to the calibration table"
        )
        self.remove_button = widgets.PushButton(
            text="Remove selected calibration rows", tooltip="remove the selected calibration rows"
        )
        self.conflicts = message_label(value="")
        self.conflicts.visible = False
        self.extend(
            [
                widgets.Label(value="Current calibration"),
                self.view.widget,
                self.conflicts,
                self.voltage,
                self.spot,
                self.aperture,
                self.probe,
                self.current,
                self.method,
                self.add_button,
                self.remove_button,
            ]
        )
        # earlier measurements at the typed voltage, spot, aperture and probe mode
        self.history = DriftView(host.viewer, "current", self.setting)
        self.append(self.history.widgets)
        for control in (self.voltage, self.spot, self.aperture, self.probe):
            control.changed.connect(lambda *_: self.history.refresh())
        self.add_button.changed.connect(lambda: self.add())
        self.remove_button.changed.connect(lambda: self.remove_selected())

    @property
    def calibration(self):
        return self.host.table.calibration

    def add(self) -> None:
        """Add the typed current measurement to the calibration."""
        try:
            self.calibration.add(
                self.voltage.value,
                self.spot.value,
                self.current.value,
                aperture_um=self.aperture.value or None,
                probe=self.probe.value,
                method=self.method.value,
                date=pd.Timestamp.now().isoformat(timespec="seconds"),
            )
        except EmcalError as exc:
            self.host.error(str(exc))
            return
        kept = keep_in_history(
            "current",
            {"current_pa": float(self.current.value)},
            {},
            setting=self.setting(),
            source=self.method.value,
        )
        self.history.refresh()
        self.host.refresh()
        self.host.status.value = f"current added; {kept}"

    def setting(self) -> str:
        """The history's setting of the typed voltage, spot, aperture and probe mode."""
        return current_setting(
            self.voltage.value,
            self.spot.value,
            aperture_um=self.aperture.value or None,
            probe=self.probe.value.strip(),
        )

    def remove_selected(self) -> None:
        for row in reversed(self.view.selected_rows()):
            self.calibration.remove(row)
        self.host.refresh()

    def show(self) -> None:
        conflicts = self.calibration.conflicts()
        colours = {row: CONFLICT_COLOUR for rows, _ in conflicts for row in rows}
        self.view.show(self.calibration.frame, colours)
        self.conflicts.value = "\n".join(line for _, line in conflicts)
        self.conflicts.visible = bool(conflicts)

    def _edited(self, row: int, column: str, text: str) -> None:
        try:
            self.calibration.update(row, **{column: text})
        except EmcalError as exc:
            self.host.error(f"calibration row {row + 1}, {column}: {exc}")
