"""What a file says about the instrument, in SI units, with where each value came from.

Every calibration-relevant value a 2D image or a 4D dataset records is read into one
:class:`InstrumentMetadata`: its value in SI units and its source (``"file.emd:
Optics.LastMeasuredScreenCurrent"``, ``"typed by the user"``, ``"computed from ..."``). A
value the file does not hold is absent, never a default. The readers (RosettaSciIO, h5py,
mdocfile) parse the files; this module knows which of their keys mean what, in which unit.

Pure Python/NumPy: no Qt, no napari.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidParameterError
from ..units import convert, dimension, to_si, unit_of

__all__ = [
    "FIELDS",
    "Entry",
    "InstrumentMetadata",
    "fei_extended_header",
    "flatten",
    "from_mdoc",
    "from_mrc",
    "mdoc_beside",
    "from_original_metadata",
    "from_rsciio_signal",
    "merlin_header",
]

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

#: Keys of vendors' original metadata, by field: (path ending, the unit the file writes it
#: in, or a converter). Earlier rules win. Paths match whatever their case, spaces and
#: underscores; a rule matches a key whose path ends with it.
RULES: dict[str, tuple[tuple[str, Any], ...]] = {
    "beam_energy": (
        ("TVIPS.TemHighTension", "V"),  # the TVIPS "HighTension" field is 10x off
        ("Optics.AccelerationVoltage", "V"),  # Velox
        ("High tension_kV", "kV"),  # TIA, FEI tags (unit in the name)
        ("MicroscopeConditions.AcceleratingVoltage", "V"),  # TIA
        ("Microscope Info.Voltage", "V"),  # DigitalMicrograph
        ("EBeam.HV", "V"),  # Thermo Fisher / FEI SEM TIFF
        ("Beam.HV", "V"),
        ("blockfile_header.Beam_energy", "V"),  # NanoMegas: V
        ("VoltageKV", "kV"),
        ("Voltage", "V"),  # SerialEM .mdoc: kV there, see mdoc_rows
    ),
    "magnification": (
        ("TVIPS.TemMagnification", ""),  # TVIPS "Magnification" includes the camera's
        ("Optics.NominalMagnification", ""),
        ("Magnification_x", ""),
        ("Microscope Info.Indicated Magnification", ""),
        ("CustomProperties.StemMagnification", ""),  # Velox STEM
        ("Magnification", ""),
    ),
    "camera_length": (
        ("Camera length_m", "m"),
        ("Optics.CameraLength", "m"),
        ("Microscope Info.STEM Camera Length", "mm"),
        ("detector_distance", "m"),
    ),
    "spot": (
        ("Optics.SpotIndex", ""),
        ("ExperimentalDescription.Spot size", ""),
        ("Microscope Info.Spot size", ""),
        ("EBeam.Spot", ""),
        ("Beam.Spot", ""),
        ("SpotSize", ""),
    ),
    "beam_current": (
        ("Optics.LastMeasuredScreenCurrent", "amp"),  # Velox, A
        ("Optics.ScreenCurrent", "amp"),
        ("EBeam.BeamCurrent", "amp"),  # FEI SEM TIFF, A (6.25e-12 A is 6.25 pA)
        ("Microscope Info.Probe Current (nA)", "nA"),
    ),
    "c2_aperture": (("C2 Aperture_um", "um"),),
    "dwell_time": (
        ("Scan.DwellTime", "s"),  # Velox
        ("AcquireInfo.DwellTimePath", "s"),  # TIA
        ("DigiScan.Sample Time", "us"),  # DigitalMicrograph
        ("Scan.Dwelltime", "s"),  # FEI SEM
        ("dwell_time", "s"),
    ),
    "frame_time": (
        ("Scan.FrameTime", "s"),
        ("AcquireInfo.FrameTime", "s"),
        ("DigiScan.Frame Time", "s"),
        ("frame_time", "s"),
    ),
    "exposure_time": (
        ("TVIPS.ExposureTime", "ms"),
        ("DataBar.Exposure Time (s)", "s"),
        ("CCD.Exposure (s)", "s"),
        ("ExposureTime", "s"),
        ("exposure_time", "s"),
    ),
    "detector_pixel_size": (
        ("TVIPS.PhysicalPixelSizeX", "nm"),
        ("x_pixel_size", "m"),
    ),
    "instrument": (
        ("Instrument.InstrumentModel", None),
        ("ExperimentalDescription.Microscope", None),
        ("Microscope Info.Name", None),
        ("TVIPS.CameraType", None),
    ),
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


# -- reading vendors' original metadata ---------------------------------------------------
def flatten(metadata, prefix: str = "") -> dict[str, Any]:
    """Nested metadata as ``{"a.b.c": value}`` (Velox ``{"value": ...}`` unwrapped; list
    items numbered)."""
    out: dict[str, Any] = {}
    if isinstance(metadata, Mapping):
        if "value" in metadata and set(metadata) <= {"value", "type", "unit", "units"}:
            out[prefix] = metadata["value"]
            return out
        for key, value in metadata.items():
            out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(metadata, list) and any(isinstance(v, (Mapping, list)) for v in metadata):
        for i, value in enumerate(metadata):
            out.update(flatten(value, f"{prefix}.{i}"))
    elif prefix:
        out[prefix] = metadata
    return out


def _normalised(path: str) -> str:
    return re.sub(r"[\s_]", "", str(path)).lower()


def _number(value) -> float | None:
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    if isinstance(value, str):
        match = re.match(r"\s*([-+]?\d*\.?\d+(?:[eE][-+]?\d+)?)", value)
        value = match.group(1) if match else value
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _text(value) -> str | None:
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    if value is None or isinstance(value, (Mapping, list)):
        return None
    text = str(value).strip()
    return text or None


def _find(flat: Mapping[str, Any], ending: str) -> tuple[str, Any] | None:
    """The shallowest key whose path ends with ``ending``."""
    wanted = _normalised(ending)
    best = None
    for key, value in flat.items():
        normal = _normalised(key)
        if normal == wanted or normal.endswith("." + wanted):
            depth = key.count(".")
            if best is None or depth < best[0]:
                best = (depth, key, value)
    return None if best is None else (best[1], best[2])


def from_original_metadata(
    original, path=None, *, into: InstrumentMetadata | None = None
) -> InstrumentMetadata:
    """The values a vendor's original metadata (nested dicts, as RosettaSciIO or h5py give
    them) records, by the :data:`RULES`, plus the mode and probe mode and the condenser
    aperture where they are written in words or lists."""
    out = into if into is not None else InstrumentMetadata(path)
    flat = flatten(original)
    for name, rules in RULES.items():
        if name in out:
            continue
        for ending, unit in rules:
            found = _find(flat, ending)
            if found is None:
                continue
            key, raw = found
            if name == "instrument":
                text = _text(raw)
                if text:
                    out.set_from_file(name, text, key)
                    break
                continue
            number = _number(raw)
            if number is None:
                continue
            if name in ("beam_current",) and number <= 0:
                out.note(f"{out.file_source(key)} is {raw!r}: no current recorded")
                continue
            if name == "beam_energy":
                # a voltage in V is the electrons' energy in eV
                si = convert(number, "kV", "V") if unit == "kV" else number
                if unit == "V" and ending in ("Voltage", "VoltageKV") and si < 1000:
                    si = convert(si, "kV", "V")  # written in kV (SerialEM, some TIFF tags)
                out.set_from_file(name, si, key)
            elif unit == "":
                out.set_from_file(name, number, key)
            else:
                out.set_from_file(name, to_si(number, unit), key)
            break
    _modes(flat, out)
    _velox_apertures(flat, out)
    _berkeley_microscope(original, out)
    return out


#: A Berkeley EMD ``microscope`` group's attributes (free-form names, written by people and
#: acquisition scripts): field -> (names as normalised by :func:`_normalised`, the unit a
#: bare number is in, or None when a bare number's unit cannot be told).
_BERKELEY = {
    "beam_energy": (("hightension", "voltage", "acceleratingvoltage", "ht"), "V"),
    "camera_length": (("cameralength", "cl"), None),
    "convergence_angle": (
        ("convergenceangle", "convergencesemiangle", "semiconvergenceangle", "alpha"),
        None,
    ),
    "magnification": (("magnification", "mag"), ""),
    "spot": (("spot", "spotsize"), ""),
    "beam_current": (("current", "beamcurrent", "probecurrent"), None),
}

_BERKELEY_DIMENSION = {
    "beam_energy": ("voltage", "energy"),
    "camera_length": ("length",),
    "convergence_angle": ("angle",),
    "beam_current": ("current",),
}

_UNIT_WRITTEN = re.compile(r"^\s*([-+]?\d*\.?\d+(?:[eE][-+]?\d+)?)\s*([A-Za-zµμÅ]+)?\s*$")
_NAME_UNIT = re.compile(r"^(.*?)[\s_]*(?:\(([^)]+)\)|_([A-Za-zµμ]+))$")


def _berkeley_microscope(original, out: InstrumentMetadata) -> None:
    """High tension, camera length, convergence angle, magnification, spot and current from
    a Berkeley EMD's ``microscope`` group. The unit is the one written with the value
    (``"300 kV"``) or in the name (``"camera length (mm)"``, ``"high_tension_kV"``); a bare
    number whose unit cannot be told is not used, and a note says so."""
    group = original.get("microscope") if isinstance(original, Mapping) else None
    if not isinstance(group, Mapping):
        return
    for key, raw in group.items():
        name_part, name_unit = str(key), None
        match = _NAME_UNIT.match(name_part)
        if match and unit_of(match.group(2) or match.group(3) or ""):
            name_part, name_unit = match.group(1), unit_of(match.group(2) or match.group(3))
        normal = re.sub(r"[\s_\-.]", "", name_part).lower()
        field = next((f for f, (names, _) in _BERKELEY.items() if normal in names), None)
        if field is None or field in out:
            continue
        text = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
        if isinstance(text, np.ndarray) and text.size == 1:
            text = text.item()
        written = _UNIT_WRITTEN.match(str(text))
        if not written:
            continue
        number = float(written.group(1))
        unit = unit_of(written.group(2)) if written.group(2) else name_unit
        bare = _BERKELEY[field][1]
        where = f"microscope.{key}"
        if field in ("magnification", "spot"):
            out.set_from_file(field, number, where)
            continue
        if unit is None and field == "beam_energy":
            unit = "kV" if number < 1000 else bare  # written in kV or V
        if field == "beam_current" and unit in ("A", "mA", "uA", "µA", "nA", "pA", "fA"):
            unit = "amp" if unit == "A" else unit  # "A" here is the ampere, not the ångström
        if unit is None or not number > 0:
            out.note(
                f"{out.file_source(where)} is {raw!r} with no unit recorded: not used as "
                f"{field.replace('_', ' ')}"
            )
            continue
        wanted = _BERKELEY_DIMENSION[field]
        try:
            if dimension(unit) not in wanted:
                raise ValueError(unit)
            value = to_si(number, unit)  # a voltage in V is the electrons' energy in eV
        except (ValueError, InvalidParameterError):
            out.note(f"{out.file_source(where)} is {raw!r}: its unit is not one for {field}")
            continue
        out.set_from_file(field, value, f"{where} ({unit})")


def _modes(flat, out: InstrumentMetadata) -> None:
    """TEM / STEM / diffraction and the probe mode, from the words vendors use."""
    velox = _find(flat, "Optics.OperatingMode")
    if velox is not None and "mode" not in out:
        code = _number(velox[1])
        # Velox: 1 = TEM, 2 = STEM (Thermo Fisher's OperatingMode enumeration)
        mode = {1: "TEM", 2: "STEM"}.get(int(code)) if code is not None else None
        if mode:
            out.set_from_file("mode", mode, velox[0])
    for ending in (
        "Microscope Info.Operation Mode",
        "Microscope Info.Illumination Mode",
        "ExperimentalDescription.Mode",
        "Beam.ImageMode",
        "TemMode",
    ):
        found = _find(flat, ending)
        text = _text(found[1]) if found else None
        if not text:
            continue
        upper = text.upper()
        if "mode" not in out:
            if "SCANNING" in upper or "STEM" in upper:
                out.set_from_file("mode", "STEM", found[0])
            elif upper in ("IMAGING", "TEM") or upper.startswith("TEM "):
                out.set_from_file("mode", "TEM", found[0])
            elif "DIFFRACTION" in upper and "STEM" not in upper:
                out.set_from_file("mode", "diffraction", found[0])
        if "probe_mode" not in out:
            if "NANOPROBE" in upper or re.search(r"\bNP\b", upper):
                out.set_from_file("probe_mode", "nano", found[0])
            elif "MICROPROBE" in upper or re.search(r"\b(µP|UP|MP)\b", upper):
                out.set_from_file("probe_mode", "micro", found[0])
    probe = _find(flat, "Optics.ProbeMode")
    if probe is not None and "probe_mode" not in out and _text(probe[1]):
        # Velox writes an undocumented integer: kept as text, compared as such
        out.set_from_file("probe_mode", _text(probe[1]), probe[0])


def _velox_apertures(flat, out: InstrumentMetadata) -> None:
    if "c2_aperture" in out:
        return
    for key, value in flat.items():
        if _normalised(key).endswith(".name") and _text(value) == "C2":
            base = key[: -len(".Name")] if key.endswith(".Name") else key.rsplit(".", 1)[0]
            diameter = _number(flat.get(f"{base}.Diameter"))
            if diameter and diameter > 0:
                out.set_from_file("c2_aperture", diameter, f"{base}.Diameter")  # m
            return


# -- RosettaSciIO signals ---
def from_rsciio_signal(signal: dict, path) -> InstrumentMetadata:
    """The values of a RosettaSciIO signal: its axes, its mapped metadata and the
    vendor's original metadata."""
    inst = InstrumentMetadata(path)
    axes = signal.get("axes", [])
    nav = [a for a in axes if a.get("navigate")]
    sig = [a for a in axes if a.get("navigate") is False] or axes
    step = axes_lengths(nav, inst.file_source("navigation")) if len(nav) == 2 else None
    if step:
        inst.set("scan_step", tuple(step[0]), step[1])
    pixel = axes_lengths(sig, inst.file_source("image")) if len(nav) < 2 else None
    if pixel:
        inst.set("pixel_size", tuple(pixel[0]), pixel[1])
    elif len(nav) < 2 and len(sig) >= 2:
        scales = [_number(a.get("scale")) for a in sig[-2:]]
        if all(scales) and any(abs(v - 1.0) > 1e-12 for v in scales):
            inst.note(
                f"{inst.file_source('image')}: axes scale "
                f"{' x '.join(f'{v:g}' for v in scales)} per pixel with no length unit "
                f"recorded (units {[a.get('units') for a in sig[-2:]]}): not used as a pixel "
                "size; give the pixel size yourself"
            )
    mapped = signal.get("metadata", {})
    acquisition = mapped.get("Acquisition_instrument", {})
    tem = acquisition.get("TEM", {}) if isinstance(acquisition.get("TEM"), dict) else {}
    key = "Acquisition_instrument"
    if "dwell_time" in acquisition:
        inst.set_from_file("dwell_time", float(acquisition["dwell_time"]), f"{key}.dwell_time")
    if "beam_energy" in tem:  # RosettaSciIO: keV
        inst.set_from_file(
            "beam_energy", to_si(float(tem["beam_energy"]), "keV"), f"{key}.TEM.beam_energy (keV)"
        )
    if "camera_length" in tem:  # RosettaSciIO: mm
        inst.set_from_file(
            "camera_length",
            to_si(float(tem["camera_length"]), "mm"),
            f"{key}.TEM.camera_length (mm)",
        )
    if "magnification" in tem:
        inst.set_from_file("magnification", float(tem["magnification"]), f"{key}.TEM.magnification")
    general = mapped.get("General", {})
    if general.get("date"):
        when = iso_time(general.get("date"), general.get("time"), general.get("time_zone"))
        if when:
            inst.set_from_file("acquisition_time", when, "General.date, time, time_zone")
    from_original_metadata(signal.get("original_metadata", {}), path, into=inst)
    return inst


# -- MRC with a Thermo Fisher extended header -------------------------------------------
def fei_extended_header(path) -> dict[str, Any]:
    """The first section of a Thermo Fisher (FEI1/FEI2) MRC extended header, read with
    mrcfile; empty when the file has none."""
    import mrcfile

    try:
        with mrcfile.mmap(path, permissive=True) as mrc:
            if bytes(mrc.header.exttyp) not in (b"FEI1", b"FEI2"):
                return {}
            section = mrc.indexed_extended_header[0]
            names = section.dtype.names
            fields = {}
            for name in names:
                value = section[name]
                if isinstance(value, bytes):
                    value = value.decode("latin-1").strip("\x00 ")
                elif isinstance(value, np.generic):
                    value = value.item()
                fields[name] = value
    except (OSError, ValueError, IndexError, TypeError):
        return {}
    return fields


#: Thermo Fisher MRC extended header fields (all SI), by instrument field.
_FEI_MRC = {
    "beam_energy": "HT",  # V, the electrons' energy in eV
    "spot": "Spot index",
    "magnification": "Magnification",
    "exposure_time": "Integration time",
    "dwell_time": "Dwell time",
    "frame_time": "Frame time",
    "camera_length": "Camera length",
    "instrument": "Microscope type",
}


def from_mrc(path, into: InstrumentMetadata) -> InstrumentMetadata:
    """Add what a Thermo Fisher MRC extended header records (mode from ``Illumination
    mode``, time from ``Timestamp``: days since 1899-12-30, as Excel counts them)."""
    header = fei_extended_header(path)
    where = "extended header"
    for name, key in _FEI_MRC.items():
        value = header.get(key)
        if value in (None, "", 0, 0.0):
            continue
        into.set_from_file(
            name, value if name == "instrument" else float(value), f"{where} {key}", replace=False
        )
    size = (header.get("Pixel size Y"), header.get("Pixel size X"))
    if all(size) and "pixel_size" not in into:
        into.set_from_file("pixel_size", tuple(float(v) for v in size), f"{where} Pixel size Y, X")
    mode = str(header.get("Illumination mode", "")).lower()
    if mode:
        into.set_from_file(
            "mode",
            "STEM" if mode == "probe" else "TEM",
            f"{where} Illumination mode",
            replace=False,
        )
    stamp = header.get("Timestamp")
    if stamp and 1e4 < float(stamp) < 1e6:
        from datetime import timedelta

        when = datetime(1899, 12, 30) + timedelta(days=float(stamp))
        into.set_from_file(
            "acquisition_time",
            when.isoformat(timespec="seconds"),
            f"{where} Timestamp (days since 1899-12-30)",
            replace=False,
        )
    return into


# -- SerialEM .mdoc beside an image or stack -------------------------------------------
def from_mdoc(path, into: InstrumentMetadata) -> InstrumentMetadata:
    """Add what the first section of a SerialEM ``.mdoc`` records (read with mdocfile):
    pixel spacing (Å), voltage (kV), magnification, spot, exposure time; values the image
    file holds itself are kept."""
    import contextlib
    import io

    import mdocfile

    path = Path(path)
    try:  # mdocfile prints about the keys it maps or does not know
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            sections = mdocfile.read(path)
    except Exception as exc:  # pydantic and parsing errors of many kinds
        into.note(f"{path.name}: cannot be read as a SerialEM .mdoc ({type(exc).__name__})")
        return into
    if len(sections) == 0:
        return into
    record = {k: v for k, v in sections.iloc[0].to_dict().items() if _number(v) is not None}
    where = f"{path.name}: first section"
    rules = (
        ("pixel_size", "PixelSpacing", "Å"),
        ("beam_energy", "Voltage", "kV"),
        ("magnification", "Magnification", ""),
        ("spot", "SpotSize", ""),
        ("exposure_time", "ExposureTime", "s"),
    )
    for name, key, unit in rules:
        value = _number(record.get(key))
        if value is None or value <= 0 or name in into:
            continue
        si = to_si(value, unit) if unit else value
        into.set(name, (si, si) if name == "pixel_size" else si, f"{where} {key}")
    return into


def mdoc_beside(path) -> Path | None:
    """SerialEM's log of an image or stack: ``name.st.mdoc`` or ``name.mdoc``, or None."""
    path = Path(path)
    for candidate in (path.with_name(path.name + ".mdoc"), path.with_suffix(".mdoc")):
        if candidate.is_file():
            return candidate
    return None


# -- axes --------------------------------------------------------------------------------
def axes_lengths(axes, source: str) -> tuple[list[float], str] | None:
    """``([y, x] in m, source)`` of two axes with a length unit, or None."""
    if len(axes) < 2:
        return None
    pair = axes[-2:]
    units = [unit_of(a.get("units") or "") for a in pair]
    if not all(u and dimension(u) == "length" for u in units):
        return None
    scales = [_number(a.get("scale")) for a in pair]
    if not all(s and s > 0 for s in scales):
        return None
    names = ", ".join(str(a.get("name", "?")) for a in pair)
    unit_text = units[0] if units[0] == units[1] else "/".join(units)
    return [to_si(s, u) for s, u in zip(scales, units)], f"{source}: axes {names} ({unit_text})"


# -- time --------------------------------------------------------------------------------
def iso_time(
    date: str | None, time: str | None = None, zone: str | None = None, *, day_first: bool = True
) -> str | None:
    """An ISO 8601 time from a vendor's date and time texts (with the offset when the zone
    is known), or None when they cannot be read."""
    import pandas as pd

    text = " ".join(t for t in (date, time) if t)
    if not text.strip():
        return None
    try:
        stamp = (
            pd.Timestamp(text)
            if re.match(r"\d{4}-", text)
            else pd.to_datetime(text, dayfirst=day_first)
        )
    except (ValueError, TypeError, OverflowError):
        return None
    if pd.isna(stamp):
        return None
    if zone and stamp.tzinfo is None:
        try:
            stamp = stamp.tz_localize(zone)
        except (ValueError, TypeError, KeyError):
            pass
    return stamp.isoformat()


# -- Merlin ------------------------------------------------------------------------------
def merlin_header(text: str, path=None, *, key_prefix: str = "") -> InstrumentMetadata:
    """A Quantum Detectors Merlin ``.hdr`` text: counter depth (saturation), scan shape
    (``ScanX``/``ScanY`` when written), frames announced, time stamp, readout system."""
    out = InstrumentMetadata(path)
    fields = {}
    for line in text.splitlines():
        if ":" in line:
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()

    def get(prefix):
        for key, value in fields.items():
            if key.startswith(prefix):
                return key, value
        return None

    depth = get("Counter Depth")
    if depth and _number(depth[1]):
        bits = int(_number(depth[1]))
        # a 1-bit counter reads 0/1; 6-, 12- and 24-bit counters saturate at 2**n - 1
        out.set_from_file("saturation_count", float(2**bits - 1), key_prefix + depth[0])
    scan_x, scan_y = get("ScanX"), get("ScanY")
    if scan_x and scan_y and _number(scan_x[1]) and _number(scan_y[1]):
        out.set_from_file(
            "scan_shape",
            (int(_number(scan_y[1])), int(_number(scan_x[1]))),
            key_prefix + "ScanY, ScanX",
        )
    stamp = get("Time and Date Stamp")
    if stamp:
        when = iso_time(stamp[1], day_first=True)
        if when:
            out.set_from_file("acquisition_time", when, key_prefix + stamp[0])
    system = get("Readout System")
    if system and system[1]:
        out.set_from_file("instrument", f"Quantum Detectors {system[1]}", key_prefix + system[0])
    frames = get("Frames in Acquisition")
    announced = _number(frames[1]) if frames else None
    out.frames_announced = int(announced) if announced is not None else None
    return out
