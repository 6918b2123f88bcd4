"""2D images from files, with the calibration metadata microscopes record.

Maintained readers do the parsing: NumPy for ``.npy``, RosettaSciIO for TIFF (including
FEI/Thermo and other vendor tags), DigitalMicrograph, Velox/EMD, TIA, MRC and TVIPS.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import numpy as np

from .._files import check_readable, map_npy
from ..errors import InvalidDataError
from ..units import convert
from .instrument import InstrumentMetadata, from_mrc, from_rsciio_signal

__all__ = ["find_magnification", "find_number", "find_text", "open_image"]

_RSCIIO = {
    ".tif": "rsciio.tiff",
    ".tiff": "rsciio.tiff",
    ".dm3": "rsciio.digitalmicrograph",
    ".dm4": "rsciio.digitalmicrograph",
    ".emd": "rsciio.emd",
    ".ser": "rsciio.tia",
    ".emi": "rsciio.tia",
    ".mrc": "rsciio.mrc",
    # HyperSpy's own files, and HDF5 files HyperSpy wrote (2D images only here)
    ".hspy": "rsciio.hspy",
    ".hdf5": "rsciio.hspy",
    ".h5": "rsciio.hspy",
}


def open_image(path) -> tuple[np.ndarray, dict[str, Any]]:
    """The first 2D image of a file, and its metadata.

    Returns
    -------
    image : ndarray (ny, nx)
    metadata : dict
        ``source``; ``pixel_size_nm`` and ``magnification`` when the file records them;
        ``instrument``: every value the file records, in SI units with its source
        (:meth:`~napari_emcal.io.instrument.InstrumentMetadata.to_json`); and
        ``original_metadata``.

    Raises
    ------
    InvalidDataError
        Unknown extension, unreadable file, or no 2D image in it.
    """
    path = Path(path)
    check_readable(path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        image = map_npy(path)
        inst = InstrumentMetadata(path)
        inst.note(f"{path.name}: a .npy file records no calibration")
        return _plane(np.asarray(image), path), {"source": str(path), "instrument": inst.to_json()}
    if suffix not in _RSCIIO:
        raise InvalidDataError(
            f"{path.name}: unknown image format; use .npy, {', '.join(sorted(_RSCIIO))}"
        )
    read_from = _tia_emi(path) if suffix == ".ser" else path
    try:
        signals = importlib.import_module(_RSCIIO[suffix]).file_reader(str(read_from))
    except Exception as exc:  # the readers raise many types for broken files
        raise InvalidDataError(f"cannot read {path}: {_read_error(exc)}") from exc
    images = [s for s in signals if np.ndim(s["data"]) >= 2]
    if not images:
        raise InvalidDataError(f"{path.name} holds no image")
    signal = images[0]
    inst = from_rsciio_signal(signal, read_from)
    if suffix == ".mrc":
        from_mrc(path, inst)
    if "pixel_size" not in inst:
        inst.note(f"{path.name}: no pixel size in a length unit is recorded")
    metadata: dict[str, Any] = {
        "source": str(path),
        "original_metadata": signal.get("original_metadata", {}),
        "instrument": inst.to_json(),
    }
    if "pixel_size" in inst:
        metadata["pixel_size_nm"] = convert(inst.value("pixel_size")[-1], "m", "nm")
    if "magnification" in inst:
        metadata["magnification"] = float(inst.value("magnification"))
    return _plane(np.asarray(signal["data"]), path), metadata


def _tia_emi(ser: Path) -> Path:
    """TIA keeps the microscope's metadata in the ``.emi`` beside ``name_1.ser``: read
    through it when it is there (RosettaSciIO then reads the ``.ser`` with it)."""
    emi = ser.with_name(re.sub(r"_\d+$", "", ser.stem) + ".emi")
    return emi if emi.exists() else ser


def _plane(array: np.ndarray, path: Path) -> np.ndarray:
    if array.ndim < 2:
        raise InvalidDataError(f"{path.name} holds no 2D image (shape {array.shape})")
    while array.ndim > 2:
        array = array[0]
    return array


MAGNIFICATION_KEYS = (
    "magnification",
    "indicatedmagnification",
    "nominalmagnification",
    "actualmagnification",
    "stemmagnification",
)


def find_magnification(metadata) -> float | None:
    """The nominal magnification recorded anywhere in nested metadata, or None.

    Looks for keys such as ``magnification``, ``Magnification``, ``Indicated Magnification``
    ``NominalMagnification`` or ``StemMagnification`` (DigitalMicrograph, Velox, SerialEM,
    TVIPS, HyperSpy-style).
    """
    return find_number(metadata, MAGNIFICATION_KEYS, positive=True)


def find_number(metadata, keys, *, positive: bool = False) -> float | None:
    """The first finite number stored under one of ``keys`` in nested metadata, or None.

    Keys match whatever their case, spaces and underscores (``"spotsize"`` matches
    ``"Spot Size"`` and ``"spot_size"``); the shallowest entry wins, and ``keys`` earlier in
    the list win at the same depth. Velox-style ``{"value": ...}`` wrappers are unwrapped.
    """

    def number(value):
        try:
            value = float(value)
        except (TypeError, ValueError):
            return None
        return value if np.isfinite(value) and (value > 0 or not positive) else None

    return _find(metadata, keys, number)


def find_text(metadata, keys) -> str | None:
    """Like :func:`find_number` for a non-empty text (or a number, given as text)."""

    def text(value):
        if isinstance(value, (dict, list)) or value is None:
            return None
        value = str(value).strip()
        return value or None

    return _find(metadata, keys, text)


def _normalised(key) -> str:
    return str(key).lower().replace(" ", "").replace("_", "").replace(".", "")


def _find(metadata, keys, convert):
    wanted = {name: rank for rank, name in enumerate(keys)}
    level = [metadata]
    while level:  # breadth first: the shallowest, most general entry wins
        best = None
        deeper = []
        for node in level:
            items = node.items() if isinstance(node, dict) else ()
            if isinstance(node, list):
                deeper.extend(v for v in node if isinstance(v, (dict, list)))
            for key, value in items:
                rank = wanted.get(_normalised(key))
                if rank is not None:
                    if isinstance(value, dict) and "value" in value:  # Velox
                        value = value["value"]
                    converted = convert(value)
                    if converted is not None and (best is None or rank < best[0]):
                        best = (rank, converted)
                elif isinstance(value, (dict, list)):
                    deeper.append(value)
        if best is not None:
            return best[1]
        level = deeper
    return None


def _read_error(exc: Exception) -> str:
    """A reader library's error in words: a cut file says what it is."""
    text = str(exc)
    if "mmap length is greater than file size" in text or "buffer is smaller" in text:
        return "the file is shorter than its header says (cut while copying?)"
    return text or type(exc).__name__
