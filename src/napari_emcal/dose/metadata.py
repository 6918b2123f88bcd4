"""Dose-table rows from what microscopes record: image layers' metadata and files.

Maintained readers do the parsing: RosettaSciIO (Velox EMD, DigitalMicrograph, TIFF with
vendor tags, TIA, MRC) through :func:`napari_emcal.io.images.open_image` and this
project's lazy 4D readers; SerialEM ``.mdoc`` files are read section by section by
:mod:`.mdoc` (their section types and order carry a tilt series' dose). This module only
maps the recorded names and units onto the table's columns.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InvalidDataError
from ..io.images import find_magnification, find_number, find_text
from ..io.instrument import InstrumentMetadata
from ..units import convert
from .mdoc import MdocSection, read_mdoc

__all__ = ["row_from_metadata", "rows_from_file", "rows_from_layer"]

# (key as normalised by find_number, factor to the column's unit), in order of preference.
_VOLTAGE = (
    ("voltagekv", None),
    ("accelerationvoltage", None),
    ("acceleratingvoltage", None),
    ("voltage", None),
    ("ht", None),
    ("beamenergy", None),
)  # V or kV (eV or keV): told apart by size
# (key, the unit the file writes it in); values are converted to the column's unit
_CURRENT_PA = (
    ("currentpa", "pA"),
    ("lastmeasuredscreencurrent", "amp"),
    ("screencurrent", "amp"),
    ("beamcurrent", "nA"),
)  # HyperSpy: nA
_SPOT = (("spotindex", ""), ("spotsize", ""), ("spot", ""))
_DWELL_US = (("dwellus", "us"), ("dwelltime", "s"), ("pixeltime", "s"))
_FRAME_S = (("frametimes", "s"), ("frametime", "s"))
_EXPOSURE_S = (
    ("exposures", "s"),
    ("exposuretime", "s"),
    ("integrationtime", "s"),
    ("exposure", "s"),
)
_PIXEL_NM = (("pixelsizenm", "nm"), ("pixelsizex", "m"))  # FEI MRC header: m
_DIAMETER_UM = (("illuminateddiameterum", "um"), ("beamdiameterum", "um"))
_COUNTS = (("countsperpixelpers", ""),)
_COUNTS_PER_ELECTRON = (("countsperelectron", ""),)
#: Lists in a layer's metadata that describe other things than this image.
_NOT_THIS_IMAGE = ("frames", "current_calibration")


def _first(metadata, aliases, unit: str | None = None) -> float | None:
    """The first alias's value found, converted from the alias's unit to ``unit``."""
    for key, file_unit in aliases:
        value = find_number(metadata, (key,))
        if value is not None:
            return value if file_unit is None or unit is None else convert(value, file_unit, unit)
    return None


def row_from_metadata(metadata, *, image: str = "", shape=None) -> dict[str, Any]:
    """A dose-table row (see :data:`napari_emcal.dose.table.INPUT`) from nested metadata.

    Parameters
    ----------
    metadata : mapping
        A layer's metadata or what :func:`~napari_emcal.io.images.open_image` or
        :func:`~napari_emcal.io.readers.open_4d` return (``original_metadata`` included).
    image : str
        The row's name.
    shape : (int, int), optional
        The image shape (or the scan shape of 4D STEM).

    Returns
    -------
    dict
        Only the columns the metadata states; the rest stay for the user to enter.
    """
    row: dict[str, Any] = {"image": image}
    metadata = _without(metadata, _NOT_THIS_IMAGE)
    voltage = _first(metadata, _VOLTAGE)
    if voltage:
        row["voltage_kv"] = convert(voltage, "V", "kV") if voltage > 1000 else voltage
    tvips = _find_dict(metadata, "TVIPS")
    if tvips is not None and find_number(tvips, ("exposuretime",)) is not None:
        row["exposure_s"] = convert(find_number(tvips, ("exposuretime",)), "ms", "s")  # TVIPS
    for column, aliases, unit in (
        ("current_pa", _CURRENT_PA, "pA"),
        ("spot", _SPOT, ""),
        ("dwell_us", _DWELL_US, "us"),
        ("frame_time_s", _FRAME_S, "s"),
        ("exposure_s", _EXPOSURE_S, "s"),
        ("pixel_size_nm", _PIXEL_NM, "nm"),
        ("illuminated_diameter_um", _DIAMETER_UM, "um"),
        ("counts_per_pixel_per_s", _COUNTS, ""),
        ("counts_per_electron", _COUNTS_PER_ELECTRON, ""),
    ):
        value = _first(metadata, aliases, unit)
        if value is not None and column not in row:
            row[column] = value
    step = find_number(metadata, ("scanstep",))  # this project's 4D metadata: m
    if "pixel_size_nm" not in row:
        steps = _find_list(metadata, "scan_step")
        if steps:
            row["pixel_size_nm"] = convert(float(steps[-1]), "m", "nm")
        elif step:
            row["pixel_size_nm"] = convert(step, "m", "nm")
    magnification = find_magnification(metadata)
    if magnification:
        row["magnification"] = magnification
    aperture = find_number(metadata, ("apertureum",)) or _condenser_aperture_um(metadata)
    if aperture:
        row["aperture_um"] = aperture
    probe = find_text(metadata, ("probemode", "probe"))
    if probe is not None:
        row["probe"] = probe
    mode = _mode(metadata, row)
    if mode:
        row["mode"] = mode
    time = _time(metadata)
    if time:
        row["time"] = time
    if shape is not None:
        row["shape_y"], row["shape_x"] = (int(n) for n in tuple(shape)[-2:])
    source = find_text(metadata, ("source",))
    if source:
        row["source"] = source
    document = _find_under(metadata, "instrument", lambda v: isinstance(v, dict) and "values" in v)
    if document is not None:
        # read by this project's readers: what the file records, with its units, wins over
        # the key hunting above; only the dose table's own columns are kept from it
        recorded = row_from_instrument(InstrumentMetadata.from_json(document), shape=shape)
        own = {k: v for k, v in row.items() if k in _NOT_INSTRUMENT}
        row = {**own, **{k: v for k, v in recorded.items() if k != "source"}}
    return row


#: Dose-table columns that no instrument value gives (the camera's counts, the beam's
#: diameter typed into metadata, the row's name and origin).
_NOT_INSTRUMENT = (
    "image",
    "source",
    "counts_per_pixel_per_s",
    "counts_per_electron",
    "illuminated_diameter_um",
    "shape_y",
    "shape_x",
)


def rows_from_layer(name: str, data_shape, metadata) -> list[dict[str, Any]]:
    """Rows for an image layer: one per frame when its metadata lists ``"frames"`` (a time
    series stack), else one; the scan shape for 4D STEM, the image shape otherwise."""
    data_shape = tuple(data_shape)
    shape = data_shape[:2] if len(data_shape) == 4 else data_shape[-2:]
    base = row_from_metadata(metadata, image=name, shape=shape)
    frames = _find_list_of_dicts(metadata, "frames")
    if not frames:
        return [base]
    rows = []
    for index, frame in enumerate(frames):
        row = {**base, **row_from_metadata(frame, image=f"{name} [{index}]")}
        row.pop("source", None)
        rows.append({**row, "source": base.get("source", name)})
    return rows


def row_from_instrument(inst: InstrumentMetadata, *, image: str = "", shape=None) -> dict[str, Any]:
    """A dose-table row from what a file records (:class:`InstrumentMetadata`, SI), in
    the table's units. Only what the file holds: no default stands in for a value."""
    row: dict[str, Any] = {"image": image}
    to_column = (
        ("voltage_kv", "beam_energy", lambda v: convert(v, "eV", "keV")),  # e·V = eV
        ("spot", "spot", float),
        ("magnification", "magnification", float),
        ("current_pa", "beam_current", lambda v: convert(v, "amp", "pA")),
        ("dwell_us", "dwell_time", lambda v: convert(v, "s", "us")),
        ("frame_time_s", "frame_time", float),
        ("exposure_s", "exposure_time", float),
        ("aperture_um", "c2_aperture", lambda v: convert(v, "m", "um")),
        ("probe", "probe_mode", str),
        ("time", "acquisition_time", str),
    )
    for column, name, change in to_column:
        if name in inst:
            row[column] = change(inst.value(name))
    length = inst.value("scan_step") or inst.value("pixel_size")
    if length is not None:
        row["pixel_size_nm"] = convert(float(length[-1]), "m", "nm")
    mode = inst.value("mode")
    if mode == "diffraction":
        mode = "TEM"  # a diffraction pattern under parallel illumination: the TEM formula
    if mode is None:
        mode = (
            "STEM"
            if {"dwell_time", "scan_step"} & set(inst)
            else ("TEM" if "exposure_time" in inst else None)
        )
    if mode == "STEM":
        # a STEM image's dose comes from its scan, never from a detector's exposure
        # (Velox lists every detector's)
        row.pop("exposure_s", None)
    elif mode == "TEM":
        for column in ("dwell_us", "frame_time_s"):
            row.pop(column, None)
    if mode:
        row["mode"] = mode
    if shape is not None:
        row["shape_y"], row["shape_x"] = (int(n) for n in tuple(shape)[-2:])
    if inst.path:
        row["source"] = inst.path
    return row


def rows_from_file(path) -> list[dict[str, Any]]:
    """Dose-table rows from a file: one per section of a SerialEM ``.mdoc``, one for an
    image file (first image), one for a 4D STEM dataset (read lazily: metadata only).

    Raises
    ------
    InvalidDataError
        The file cannot be read.
    """
    path = Path(path)
    if path.suffix.lower() == ".mdoc":
        return _rows_from_mdoc(path)
    from ..io.images import open_image
    from ..io.readers import format_of, open_4d

    if format_of(path) is not None and (path.suffix.lower() != ".npy" or _npy_ndim(path) >= 3):
        try:
            dataset = open_4d(path)
        except InvalidDataError as exc:
            if "no 3D or 4D" not in str(exc) and "expected 3D or 4D" not in str(exc):
                raise
        else:
            return [
                row_from_instrument(
                    dataset.instrument, image=path.stem, shape=dataset.data.shape[:2]
                )
            ]
    image, metadata = open_image(path)
    inst = InstrumentMetadata.from_json(metadata["instrument"], path)
    return [row_from_instrument(inst, image=path.stem, shape=image.shape)]


def _without(node, keys):
    """A copy of nested dicts without ``keys`` (at any depth)."""
    if isinstance(node, dict):
        return {k: _without(v, keys) for k, v in node.items() if k not in keys}
    return node


def _npy_ndim(path: Path) -> int:
    from .._files import map_npy

    return map_npy(path).ndim


def _rows_from_mdoc(path: Path) -> list[dict[str, Any]]:
    """One row per image section of a SerialEM ``.mdoc`` (see :mod:`.mdoc`), named
    uniquely: ``stem [z]`` for a ``[ZValue]`` (a tilt, a montage piece or an image),
    ``stem [frame set n]`` for a ``[FrameSet]``, ``stem [montage n]`` for a
    ``[MontSection]``; a repeated section is kept as a ``repeat`` row (flagged, its dose
    not counted twice)."""
    mdoc = read_mdoc(path)
    stem, montage = path.stem, mdoc.is_montage
    has_frame_set = any(s.kind == "FrameSet" for s in mdoc.sections)
    tilts = any(s.kind == "ZValue" and "TiltAngle" in s.values for s in mdoc.sections)
    seen: dict[tuple[str, str], int] = {}
    rows = []
    for section in mdoc.sections:
        values = {**mdoc.globals, **section.values}
        record = section.values
        key = (section.kind, section.name)
        seen[key] = seen.get(key, 0) + 1
        label = {"FrameSet": "frame set ", "MontSection": "montage "}.get(section.kind, "")
        label += section.name
        row: dict[str, Any] = {
            "image": f"{stem} [{label}]",
            "mode": "TEM",
            "source": str(path),
            "series": stem,
        }
        if section.kind == "FrameSet":
            row["record"] = "frame set"
        elif section.kind == "MontSection":
            row["record"] = "montage"
        elif montage:
            row["record"] = "montage piece"
        elif tilts or has_frame_set:
            row["record"] = "tilt"
        else:
            row["record"] = "image"
        if section.kind == "ZValue":
            z = _number_or_none(section.name)
            if z is not None:
                row["z_value"] = z
        if seen[key] > 1:
            row["image"] += f" (repeat {seen[key]})"
            row["note"] = (
                f"repeated section [{section.kind} = {section.name}] (line {section.line}): "
                "its dose is not counted again"
            )
            row["record"] = "repeat"
        section_values, own = _Section(values), _Section(record)
        for column, name in (
            ("spot", "SpotSize"),
            ("magnification", "Magnification"),
            ("exposure_s", "ExposureTime"),
            ("voltage_kv", "Voltage"),  # SerialEM writes kV
            ("tilt_angle_deg", "TiltAngle"),
        ):
            number = section_values.number(name)
            if number is not None:
                row[column] = number
        frames = own.numbers("FrameTSStartEndFrames")
        if len(frames) == 2:
            row["frame_first"], row["frame_end"] = frames
        pixel = section_values.number("PixelSpacing")
        if pixel is not None:
            row["pixel_size_nm"] = convert(pixel, "Å", "nm")
        size = section_values.numbers("ImageSize")
        if len(size) == 2:
            row["shape_x"], row["shape_y"] = (int(n) for n in size)  # x, y
        if "DateTime" in record:
            when = serialem_time(record["DateTime"])
            if when:
                row["time"] = when
        # SerialEM records the dose it computed from its own calibration: 0 means none
        dose = _positive(own.number("ExposureDose"))
        if dose is not None:
            row["recorded_dose_e_A2"] = dose
        prior = own.number("PriorRecordDose")
        if prior is not None and math.isfinite(prior) and prior >= 0 and (dose or prior):
            # 0 is the first tilt's prior dose (kept) when SerialEM recorded doses at all
            row["prior_dose_e_A2"] = prior
        mean = own.numbers("MinMaxMean")
        exposure = own.number("ExposureTime")
        if len(mean) == 3 and exposure:
            # SerialEM's DividedBy2: the counts were halved to fit 16 bits, so the mean
            # is half the real one. Counts through the specimen: a flux from them is a
            # lower bound.
            factor = 2.0 if section_values.number("DividedBy2") else 1.0
            row["counts_per_pixel_per_s"] = mean[2] * factor / exposure
        counts = section_values.number("CountsPerElectron")
        if counts is not None:
            row["counts_per_electron"] = counts
        rows.append(row)
    return rows


class _Section:
    """Numbers from a dict of autodoc values (see :class:`.mdoc.MdocSection`)."""

    def __init__(self, values: dict[str, str]):
        self._section = MdocSection("", "", values)

    def number(self, key: str) -> float | None:
        value = self._section.number(key)
        return value if value is None or math.isfinite(value) else None

    def numbers(self, key: str) -> list[float]:
        values = self._section.numbers(key)
        return values if all(math.isfinite(v) for v in values) else []


def _number_or_none(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _positive(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


#: The date formats SerialEM has written over the years.
_SERIALEM_FORMATS = ("%d-%b-%y %H:%M:%S", "%d-%b-%Y %H:%M:%S", "%Y-%b-%d %H:%M:%S")


def serialem_time(text) -> str | None:
    """ISO 8601 from a SerialEM ``DateTime`` (two- or four-digit years, or ISO), or None."""
    return _time_from(text, _SERIALEM_FORMATS)


def _time_from(text, formats, min_length: int = 0) -> str | None:
    """ISO 8601 from a text in one of ``formats`` or any form pandas reads, or None (also
    for texts shorter than ``min_length``: a bare time of day is not a time stamp)."""
    text = " ".join(str(text).split())
    for fmt in formats:
        try:
            return datetime.strptime(text, fmt).isoformat()
        except ValueError:
            pass
    try:
        stamp = pd.Timestamp(text)
    except (ValueError, TypeError):
        return None
    if pd.isna(stamp) or len(text) < min_length:
        return None
    return stamp.isoformat()


def _is_missing(value) -> bool:
    if isinstance(value, (tuple, list, np.ndarray)):
        return False
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _condenser_aperture_um(metadata) -> float | None:
    """The C2 aperture diameter (Velox: ``Optics.Apertures``, m; or CustomProperties, µm)."""
    stack = [metadata]
    while stack:
        node = stack.pop(0)
        if isinstance(node, dict):
            if str(node.get("Name", "")).upper() == "C2" and "Diameter" in node:
                try:
                    return convert(float(node["Diameter"]), "m", "um")
                except (TypeError, ValueError):
                    pass
            custom = node.get("Aperture[C2].Name") or node.get("Aperture[C2]")
            if isinstance(custom, dict):
                value = custom.get(
                    "value",
                    custom.get("Name", {}).get("value")
                    if isinstance(custom.get("Name"), dict)
                    else None,
                )
                try:
                    return float(value)
                except (TypeError, ValueError):
                    pass
            stack.extend(v for v in node.values() if isinstance(v, (dict, list)))
        elif isinstance(node, list):
            stack.extend(v for v in node if isinstance(v, (dict, list)))
    return None


def _mode(metadata, row: dict) -> str | None:
    illumination = find_text(metadata, ("illuminationmode", "operationmode", "mode"))
    if illumination:
        text = illumination.upper()
        if text in ("PROBE", "STEM", "SCANNING", "NANOPROBE STEM"):
            return "STEM"
        if text in ("PARALLEL", "TEM", "IMAGING", "DIFFRACTION"):
            return "TEM"
    if "dwell_us" in row or "frame_time_s" in row or _find_list(metadata, "scan_step"):
        return "STEM"
    if "exposure_s" in row:
        return "TEM"
    return None


def _time(metadata) -> str | None:
    """ISO 8601 acquisition time from the formats microscopes use, or None."""
    start = _find_dict(metadata, "AcquisitionStartDatetime")  # Velox: epoch seconds, UTC
    if start is not None:
        try:
            seconds = float(start.get("DateTime", 0))
        except (TypeError, ValueError):
            seconds = 0
        if seconds > 0:
            return datetime.fromtimestamp(seconds, tz=UTC).replace(tzinfo=None).isoformat()
    text = find_text(metadata, ("time", "acquisitiontime", "datetime"))
    date = find_text(metadata, ("date", "acquisitiondate"))
    for candidate in ([f"{date} {text}"] if date and text else []) + [text, date]:
        if not candidate:
            continue
        parsed = _parse(candidate)
        if parsed:
            return parsed
    stamp = find_number(metadata, ("timestamp",))  # FEI MRC: days since 1899-12-30
    if stamp and 1e4 < stamp < 1e6:
        return (datetime(1899, 12, 30) + timedelta(days=stamp)).isoformat(timespec="seconds")
    return None


def _parse(text: str) -> str | None:
    # TIFF's and SerialEM's formats, and ISO; time zones are kept when written
    return _time_from(text, ("%Y:%m:%d %H:%M:%S", *_SERIALEM_FORMATS), min_length=8)


def _find_under(metadata, key: str, accept):
    """The shallowest value stored under ``key`` (in nested dicts and lists) that
    ``accept(value)`` takes, or None."""
    level = [metadata]
    while level:
        deeper = []
        for node in level:
            if isinstance(node, dict):
                if key in node and accept(node[key]):
                    return node[key]
                deeper.extend(v for v in node.values() if isinstance(v, (dict, list)))
            elif isinstance(node, list):
                deeper.extend(v for v in node if isinstance(v, (dict, list)))
        level = deeper
    return None


def _find_list(metadata, key: str):
    """A list of numbers under ``key`` (this project's ``scan_step``)."""
    return _find_under(
        metadata,
        key,
        lambda v: (
            isinstance(v, (list, tuple)) and bool(v) and all(isinstance(x, (int, float)) for x in v)
        ),
    )


def _find_list_of_dicts(metadata, key: str):
    """A list of dicts under ``key`` (a stack's ``frames``)."""
    return _find_under(
        metadata,
        key,
        lambda v: isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v),
    )


def _find_dict(metadata, key: str):
    return _find_under(metadata, key, lambda v: isinstance(v, dict))
