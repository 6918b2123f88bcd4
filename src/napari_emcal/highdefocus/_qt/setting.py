"""The defocus and beam setting a high-defocus measurement is filed under: read from the
defocused image's metadata where it records them, typed otherwise, each control saying
which."""

from __future__ import annotations

from magicgui import widgets

from ..._qt.provenance import FieldSources
from ...errors import InvalidParameterError
from ...io.images import find_number, find_text
from ...units import from_si

__all__ = ["BeamSetting", "defocus_um_from_metadata"]


def defocus_um_from_metadata(metadata) -> float | None:
    """Defocus in µm recorded in layer metadata (``defocus_um``, or SerialEM's ``Defocus``
    in µm; values below 0.01 in magnitude are taken as metres, as Velox stores them)."""
    value = find_number(metadata, ("defocusum",))
    if value is not None:
        return value
    value = find_number(metadata, ("defocus",))
    if value is not None and abs(value) < 1e-2:
        value = from_si(value, "µm")
    return value


#: Defocus shown for an image that records none (µm), marked as a default.
DEFAULT_DEFOCUS_UM = -100.0


class BeamSetting(widgets.Container):
    """*Defocus (µm)*, *Intensity*, *Spot size* and *Probe mode* of the defocused image."""

    def __init__(self):
        super().__init__(labels=True)
        self.margins = (0, 0, 0, 0)
        self._recorded_defocus: float | None = None
        self._image_name = ""
        self.defocus = widgets.FloatSpinBox(
            label="Defocus (µm)",
            value=DEFAULT_DEFOCUS_UM,
            min=-1e5,
            max=1e5,
            step=10.0,
            tooltip="defocus of the defocused image, µm; negative = under",
        )
        self.intensity = widgets.LineEdit(
            label="Intensity",
            value="",
            tooltip="beam intensity as the microscope shows it "
            "(C2 %, Intensity, illuminated area); empty = unknown",
        )
        self.spot = widgets.SpinBox(
            label="Spot size", value=0, min=0, max=20, tooltip="spot size index; 0 = unknown"
        )
        self.probe = widgets.LineEdit(
            label="Probe mode", value="", tooltip="e.g. micro, nano, LM; empty = unknown"
        )
        self.extend([self.defocus, self.intensity, self.spot, self.probe])
        self.field_sources = FieldSources(
            {
                "defocus": self.defocus,
                "intensity": self.intensity,
                "spot": self.spot,
                "probe": self.probe,
            }
        )

    def fill_from(self, layer) -> None:
        """The values ``layer``'s metadata records, saying which came from it; the others
        take their defaults (never the previous image's values) and are marked so."""
        from ..._qt.layers import with_calibration

        metadata = with_calibration(layer)  # whichever reader opened it
        found = {
            "defocus": defocus_um_from_metadata(metadata),
            "intensity": find_number(metadata, ("intensity", "c2intensity", "illuminatedarea")),
            "spot": find_number(metadata, ("spot", "spotsize", "spotindex"), positive=True),
            "probe": find_text(metadata, ("probe", "probemode")),
        }
        with self.field_sources.quiet():
            self.defocus.value = found["defocus"] or DEFAULT_DEFOCUS_UM
            self.intensity.value = (
                f"{found['intensity']:g}" if found["intensity"] is not None else ""
            )
            self.spot.value = int(round(found["spot"])) if found["spot"] is not None else 0
            self.probe.value = found["probe"] if found["probe"] is not None else ""
        self._recorded_defocus = found["defocus"] or None
        self._image_name = layer.name
        where = f"{layer.name}'s metadata"
        self.field_sources.filled({k: where for k, v in found.items() if v not in (None, 0)})

    def defocus_disagreement(self) -> str | None:
        """A warning when the typed defocus is not what the defocused image records."""
        recorded, typed = self._recorded_defocus, self.defocus.value
        if recorded is None or abs(typed - recorded) <= max(0.5, 0.02 * abs(recorded)):
            return None
        return (
            f"the typed defocus {typed:g} µm differs from the {recorded:g} µm that "
            f"{self._image_name} records: check which is right before accepting"
        )

    def value(self) -> dict:
        """The beam setting as the table takes it (:class:`InvalidParameterError` for an
        intensity that is not a number)."""
        text = self.intensity.value.strip()
        try:
            intensity = float(text) if text else None
        except ValueError:
            raise InvalidParameterError(
                f"intensity must be a number or empty; got {text!r}"
            ) from None
        return {
            "intensity": intensity,
            "spot": self.spot.value or None,
            "probe": self.probe.value.strip(),
        }
