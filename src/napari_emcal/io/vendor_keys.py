"""Vendors' keys: which key of a file's original metadata (as RosettaSciIO or h5py give it)
means which instrument value, in which unit (:data:`RULES`), and the functions that apply
them to original metadata and to RosettaSciIO signals; re-exported by
:mod:`napari_emcal.io.instrument`.

Pure Python/NumPy: no Qt, no napari.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import InvalidParameterError
from ..units import convert, dimension, to_si, unit_of
from .instrument_model import InstrumentMetadata

__all__ = [
    "RULES",
    "axes_lengths",
    "flatten",
    "from_original_metadata",
    "from_rsciio_signal",
    "iso_time",
]

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
