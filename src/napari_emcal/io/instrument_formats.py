"""What format-specific headers record: a Thermo Fisher MRC extended header, a SerialEM
``.mdoc`` beside an image or stack, a Quantum Detectors Merlin ``.hdr``; re-exported by
:mod:`napari_emcal.io.instrument`.

Pure Python/NumPy: no Qt, no napari.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from ..units import to_si
from .instrument_model import InstrumentMetadata
from .vendor_keys import _number, iso_time

__all__ = ["fei_extended_header", "from_mdoc", "from_mrc", "mdoc_beside", "merlin_header"]


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
