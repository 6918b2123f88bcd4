"""The instrument values a file records, in SI units, each with where it came from.

:data:`FIELDS`, :class:`Entry` and :class:`InstrumentMetadata`, the model every reader
fills; re-exported by :mod:`napari_emcal.io.instrument`.

Pure Python/NumPy: no Qt, no napari.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..units import convert

__all__ = ["FIELDS", "Entry", "InstrumentMetadata"]

#: The values a file may record: name -> (SI unit, meaning).
FIELDS: dict[str, tuple[str, str]] = {
    "pixel_size": ("m", "image pixel at the specimen, [y, x]"),
    "scan_step": ("m", "distance between scan positions at the specimen, [y, x]"),
    "scan_shape": ("", "scan positions, [ny, nx]"),
    "detector_pixel_size": ("m", "physical detector pixel"),
    "camera_length": ("m", "specimen to detector (nominal)"),
    "convergence_angle": ("rad", "probe convergence semi-angle"),
    "beam_energy": ("eV", "electron energy (the accelerating voltage in V)"),
    "magnification": ("", "nominal magnification"),
    "mode": ("", "TEM, STEM or diffraction"),
    "probe_mode": ("", "probe or illumination mode (micro, nano, ...)"),
    "spot": ("", "spot size"),
    "c2_aperture": ("m", "condenser (C2) aperture diameter"),
    "beam_current": ("A", "beam current (screen or probe)"),
    "dwell_time": ("s", "time per scan position"),
    "frame_time": ("s", "time per scan frame"),
    "exposure_time": ("s", "camera exposure"),
    "saturation_count": ("", "count at which a detector pixel saturates"),
    "acquisition_time": ("", "when the data were recorded, ISO 8601"),
    "instrument": ("", "microscope or detector"),
}


@dataclass(frozen=True)
class Entry:
    """A value and where it came from."""

    value: Any
    source: str

    def to_json(self, name: str) -> dict[str, Any]:
        value = self.value
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, tuple):
            value = list(value)
        return {"value": value, "unit": FIELDS[name][0], "source": self.source}


class InstrumentMetadata(Mapping):
    """The instrument values a file records (SI units), each with its source.

    A mapping of field name (:data:`FIELDS`) to :class:`Entry`; ``notes`` says what could
    not be read or was guessed.
    """

    def __init__(self, path: str | Path | None = None):
        self.path = None if path is None else str(path)
        self._entries: dict[str, Entry] = {}
        self.notes: list[str] = []
        #: frames the file's header announces (Merlin), to check the file against
        self.frames_announced: int | None = None

    # -- the mapping ---------------------------------------------------------------------
    def __getitem__(self, name: str) -> Entry:
        return self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def value(self, name: str, default=None):
        """The value of ``name``, or ``default`` when the file does not hold it."""
        entry = self._entries.get(name)
        return default if entry is None else entry.value

    def source(self, name: str) -> str | None:
        entry = self._entries.get(name)
        return None if entry is None else entry.source

    # -- filling ---------------------------------------------------------------------------
    def set(self, name: str, value, source: str, *, replace: bool = True) -> None:
        """Record ``value`` (SI) for ``name``; ``source`` says where it came from (a key of
        the file is prefixed with the file's name). Nothing is recorded for None."""
        if name not in FIELDS:
            raise KeyError(f"unknown instrument field {name!r}")
        if value is None or (not replace and name in self._entries):
            return
        self._entries[name] = Entry(value, source)

    def set_from_file(self, name: str, value, key: str, *, replace: bool = True) -> None:
        """Record a value read from the file under ``key``."""
        self.set(name, value, self.file_source(key), replace=replace)

    def file_source(self, key: str) -> str:
        return f"{Path(self.path).name}: {key}" if self.path else key

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def update(self, other: InstrumentMetadata, *, replace: bool = False) -> None:
        """Take the entries of ``other`` (those not held yet, unless ``replace``)."""
        for name, entry in other.items():
            self.set(name, entry.value, entry.source, replace=replace)
        for text in other.notes:
            self.note(text)

    # -- output ----------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """``{"values": {name: {"value", "unit", "source"}}, "notes": [...]}``."""
        return {
            "values": {
                name: self._entries[name].to_json(name) for name in FIELDS if name in self._entries
            },
            "notes": list(self.notes),
        }

    @classmethod
    def from_json(cls, document: Mapping[str, Any], path=None) -> InstrumentMetadata:
        out = cls(path)
        for name, entry in (document or {}).get("values", {}).items():
            if name in FIELDS and isinstance(entry, Mapping):
                value = entry.get("value")
                out.set(
                    name,
                    tuple(value) if isinstance(value, list) else value,
                    str(entry.get("source", "")),
                )
        out.notes.extend((document or {}).get("notes", []))
        return out

    def lines(self) -> list[str]:
        """One line per value (in the units microscopists read) with its source."""
        out = []
        for name in FIELDS:
            if name in self._entries:
                entry = self._entries[name]
                out.append(f"{name:<20} {_shown(name, entry.value):<30} {entry.source}")
        return out


_SHOWN_UNITS = {
    "pixel_size": "nm",
    "scan_step": "nm",
    "detector_pixel_size": "µm",
    "camera_length": "mm",
    "convergence_angle": "mrad",
    "beam_energy": "keV",
    "c2_aperture": "µm",
    "beam_current": "pA",
    "dwell_time": "µs",
    "frame_time": "s",
    "exposure_time": "s",
}


def _shown(name: str, value) -> str:
    unit = _SHOWN_UNITS.get(name)
    if unit is None:
        if isinstance(value, (list, tuple)):
            return " x ".join(str(v) for v in value)
        return f"{value:g}" if isinstance(value, float) else str(value)
    si = "amp" if name == "beam_current" else FIELDS[name][0]  # units: "A" is the ångström
    values = value if isinstance(value, (list, tuple)) else [value]
    shown = [f"{convert(float(v), si, unit):.5g}" for v in values]
    return f"{' x '.join(shown)} {unit}"
