"""A spin box that shows a quantity in the unit a microscopist types and holds it in SI.

Every widget control with a unit is one of these, so that no widget writes a conversion
factor by hand (all of them go through :mod:`napari_emcal.units`).
"""

from __future__ import annotations

from magicgui import widgets

from ..units import from_si, to_si

__all__ = ["QuantitySpinBox"]


class QuantitySpinBox(widgets.FloatSpinBox):
    """A :class:`magicgui.widgets.FloatSpinBox` in ``unit``, with :attr:`si` in SI units.

    The label gets the unit appended (``"Camera length (mm)"``), and the tooltip says the
    unit too.
    """

    def __init__(self, *, label: str, unit: str, tooltip: str = "", decimals: int = 5, **kwargs):
        tip = f"{tooltip} ({unit})" if tooltip else f"in {unit}"
        super().__init__(label=f"{label} ({unit})", tooltip=tip, **kwargs)
        self.unit = unit
        # the precision a file or a calibration gives is kept (the step only sets the
        # arrows' increment)
        self.native.setDecimals(decimals)

    @property
    def si(self) -> float:
        """The value in SI units."""
        return to_si(self.value, self.unit)

    @si.setter
    def si(self, value: float) -> None:
        self.value = from_si(value, self.unit)
