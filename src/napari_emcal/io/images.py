"""2D images from files, with the calibration metadata microscopes record.

Maintained readers do the parsing: NumPy for ``.npy``, RosettaSciIO for TIFF (including
FEI/Thermo and other vendor tags), DigitalMicrograph, Velox/EMD, TIA, MRC and TVIPS.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._files import check_readable, map_npy
from ..errors import InvalidDataError
from ..units import convert, dimension, unit_of
from .instrument import (
    InstrumentMetadata,
    from_mdoc,
    from_mrc,
    from_rsciio_signal,
    mdoc_beside,
)

__all__ = [
    "IMAGE_SUFFIXES",
    "ImageSignal",
    "LayerCalibration",
    "find_magnification",
    "find_number",
    "find_text",
    "holds_image",
    "layer_calibration",
    "open_image",
    "open_signals",
]

_RSCIIO = {
    ".tif": "rsciio.tiff",
    ".tiff": "rsciio.tiff",
    ".dm3": "rsciio.digitalmicrograph",
    ".dm4": "rsciio.digitalmicrograph",
    ".emd": "rsciio.emd",
    ".ser": "rsciio.tia",
    ".emi": "rsciio.tia",
    ".mrc": "rsciio.mrc",
    # MRC stacks and maps (IMOD / SerialEM names), read as MRC
    ".st": "rsciio.mrc",
    ".map": "rsciio.mrc",
    ".mrcs": "rsciio.mrc",
    ".rec": "rsciio.mrc",
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
    signals, read_from = _read(path, lazy=False)
    images = [s for s in signals if np.ndim(s["data"]) >= 2]
    if not images:
        raise InvalidDataError(f"{path.name} holds no image")
    signal = images[0]
    inst = _instrument(signal, path, read_from)
    metadata = _emcal_metadata(signal, path, inst)
    return _plane(np.asarray(signal["data"]), path), metadata


#: Files larger than this are read lazily (Dask), so that opening one reads no pixel data.
LAZY_ABOVE_BYTES = 64 * 2**20

#: Suffixes of the instrument images :func:`open_signals` reads.
IMAGE_SUFFIXES = tuple(sorted(_RSCIIO))


def _read(path: Path, *, lazy: bool) -> tuple[list[dict], Path]:
    """RosettaSciIO's signals of ``path`` and the file they were read through."""
    suffix = path.suffix.lower()
    if suffix not in _RSCIIO:
        raise InvalidDataError(
            f"{path.name}: unknown image format; use .npy, {', '.join(sorted(_RSCIIO))}"
        )
    read_from = _tia_emi(path) if suffix == ".ser" else path
    module = importlib.import_module(_RSCIIO[suffix])
    try:
        signals = module.file_reader(str(read_from), lazy=lazy)
        if _RSCIIO[suffix] == "rsciio.tiff":
            signals = _resolution_tags(signals, module, read_from, lazy)
    except Exception as exc:  # the readers raise many types for broken files
        raise InvalidDataError(f"cannot read {path}: {_read_error(exc)}") from exc
    return signals, read_from


#: A pixel size from TIFF resolution tags above this is a print or screen resolution
#: (72 dpi is 353 µm per pixel), not a scale at the specimen.
_RESOLUTION_TAGS_MAX_M = 1e-6


def _resolution_tags(signals: list[dict], module, path: Path, lazy: bool) -> list[dict]:
    """A plain TIFF's pixel size from its resolution tags, when the vendor's metadata gave
    none and the tags hold a specimen scale (below 1 µm per pixel), with a note either
    way."""
    if any(_length_axes(s) for s in signals):
        return signals
    forced = module.file_reader(str(path), lazy=lazy, force_read_resolution=True)
    if len(forced) != len(signals):
        return signals
    for signal, tagged in zip(signals, forced):
        found = _length_axes(tagged)
        if not found:
            continue
        note = (
            f"{path.name}: pixel size {found * 1e9:g} nm from the TIFF resolution tags "
            "(no microscope metadata)"
        )
        if found < _RESOLUTION_TAGS_MAX_M:
            signal["axes"] = tagged["axes"]
        else:
            note = (
                f"{path.name}: the TIFF resolution tags say {found * 1e6:g} µm per pixel, a "
                "print or screen resolution: not used as a pixel size"
            )
        signal.setdefault("metadata", {}).setdefault("emcal_notes", []).append(note)
    return signals


def _length_axes(signal: dict) -> float | None:
    """The pixel size (m) of a signal's last two axes when they carry a length unit."""
    axes = signal.get("axes") or []
    if len(axes) < 2:
        return None
    sizes = []
    for axis in axes[-2:]:
        unit = unit_of(axis.get("units") or "")
        try:
            scale = float(axis.get("scale"))
        except (TypeError, ValueError):
            return None
        if not unit or dimension(unit) != "length" or not scale > 0:
            return None
        sizes.append(convert(scale, unit, "m"))
    return sizes[-1]


def _instrument(signal: dict, path: Path, read_from: Path) -> InstrumentMetadata:
    """Every value a signal and its file record (MRC extended header, the ``.mdoc``
    beside), with the note when no pixel size in a length unit is recorded."""
    inst = from_rsciio_signal(signal, read_from)
    for note in signal.get("metadata", {}).get("emcal_notes", []):
        inst.note(note)
    if _RSCIIO.get(path.suffix.lower()) == "rsciio.mrc":
        from_mrc(path, inst)
    mdoc = mdoc_beside(path)
    if mdoc is not None:
        from_mdoc(mdoc, inst)
    if "pixel_size" not in inst:
        inst.note(f"{path.name}: no pixel size in a length unit is recorded")
    return inst


def _emcal_metadata(signal: dict, path: Path, inst: InstrumentMetadata) -> dict[str, Any]:
    """The ``metadata["emcal"]`` of an image layer (the layout :func:`open_image` returns
    and the docks read)."""
    metadata: dict[str, Any] = {
        "source": str(path),
        "original_metadata": signal.get("original_metadata", {}),
        "instrument": inst.to_json(),
    }
    if "pixel_size" in inst:
        metadata["pixel_size_nm"] = convert(inst.value("pixel_size")[-1], "m", "nm")
    if "magnification" in inst:
        metadata["magnification"] = float(inst.value("magnification"))
    return metadata


@dataclass(frozen=True)
class ImageSignal:
    """One image signal of a file, ready for a viewer: data (lazy for large files), the
    scale and unit of each axis, and ``metadata`` (the layout of :func:`open_image`'s,
    plus ``signal``, ``units`` and ``calibrated``)."""

    data: Any
    name: str
    scale: tuple[float, ...]
    units: tuple[str, ...]
    axis_labels: tuple[str, ...]
    metadata: dict[str, Any]
    notes: tuple[str, ...] = field(default=())

    @property
    def calibrated(self) -> bool:
        """Whether the image axes carry a physical unit (not pixels)."""
        return self.units[-1] != "pixel"


def holds_image(path) -> bool:
    """Whether ``path`` is an instrument image :func:`open_signals` reads, judged from its
    name (and, for HDF5, whether HyperSpy wrote it: other HDF5 files are 4D data or
    napari's)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _RSCIIO or not path.is_file():
        return False
    if suffix in (".h5", ".hdf5"):
        try:
            import h5py

            with h5py.File(path, "r") as h5file:
                return "Experiments" in h5file or str(
                    h5file.attrs.get("file_format", "")
                ).lower().startswith("hyperspy")
        except Exception:
            return False
    return True


def open_signals(path, *, lazy: bool | None = None) -> list[ImageSignal]:
    """Every image signal (two signal axes, with any stack axes before them) of an
    instrument file, with its calibration.

    Parameters
    ----------
    path : path-like
        DigitalMicrograph, Velox or Berkeley EMD, TIA (``.ser`` with its ``.emi``), MRC and
        stacks (``.st``, ``.map``, with a SerialEM ``.mdoc`` beside), TIFF (Thermo
        Fisher/FEI, TVIPS, SerialEM, resolution tags), HyperSpy ``.hspy``/``.hdf5``.
    lazy : bool, optional
        Read pixel data only when used (Dask); by default for files larger than
        :data:`LAZY_ABOVE_BYTES`.

    Returns
    -------
    list of ImageSignal
        Image axes in nm (real space), 1/nm (reciprocal space) or mrad (angles), or in
        pixels with a note when the file records no calibration. Spectra and other
        signals that are not images are left out with a note on the first image.

    Raises
    ------
    InvalidDataError
        Unknown extension, unreadable file, or no image in it.
    """
    path = Path(path)
    check_readable(path)
    if lazy is None:
        lazy = path.stat().st_size > LAZY_ABOVE_BYTES
    signals, read_from = _read(path, lazy=lazy)
    skipped: list[str] = []
    out: list[ImageSignal] = []
    titles: dict[str, int] = {}
    for index, signal in enumerate(signals):
        axes = list(signal.get("axes") or [])
        ndim = np.ndim(signal["data"])
        if len(axes) != ndim:
            axes = [{} for _ in range(ndim)]
        image_axes = [a for a in axes if a.get("navigate") is False]
        if "navigate" not in "".join(str(a.keys()) for a in axes):
            image_axes = axes[-2:]
        title = str(signal.get("metadata", {}).get("General", {}).get("title") or "").strip()
        if len(image_axes) != 2 or ndim < 2 or axes[-2:] != image_axes:
            skipped.append(f"'{title or index}' ({ndim}D, {len(image_axes)} signal axes)")
            continue
        inst = _instrument(signal, path, read_from)
        metadata = _emcal_metadata(signal, path, inst)
        scale, units, notes = _axes(axes, inst, path)
        name = title or path.stem
        titles[name] = titles.get(name, 0) + 1
        if titles[name] > 1:
            name = f"{name} ({titles[name]})"
        data = signal["data"]
        if not lazy:
            data = np.asarray(data)
        metadata.update({"signal": title, "units": list(units[-2:])})
        notes = [*notes, *inst.notes]
        metadata["notes"] = notes
        out.append(
            ImageSignal(
                data=data,
                name=name,
                scale=tuple(scale),
                units=tuple(units),
                axis_labels=tuple(
                    str(a.get("name") or default) for a, default in zip(axes, _default_labels(ndim))
                ),
                metadata=metadata,
                notes=tuple(notes),
            )
        )
    if not out:
        raise InvalidDataError(f"{path.name} holds no image ({', '.join(skipped) or 'empty'})")
    if skipped:
        text = f"{path.name}: not images, not opened: {', '.join(skipped)}"
        first = out[0]
        out[0] = ImageSignal(**{**first.__dict__, "notes": (*first.notes, text)})
    return out


def _default_labels(ndim: int) -> list[str]:
    return [f"axis {i}" for i in range(ndim - 2)] + ["y", "x"]


def _axes(axes: list[dict], inst: InstrumentMetadata, path: Path):
    """Scale and napari unit of each axis: image axes in nm from the instrument's pixel
    size, else 1/nm or mrad from the axes, else pixels; stack axes in their own unit."""
    scale, units, notes = [], [], []
    for axis in axes[:-2]:
        value, unit = _stack_axis(axis)
        scale.append(value)
        units.append(unit)
    if "pixel_size" in inst:
        scale += [convert(v, "m", "nm") for v in inst.value("pixel_size")]
        units += ["nm", "nm"]
        return scale, units, notes
    found = [_other_axis(a) for a in axes[-2:]]
    if all(found) and found[0][1] == found[1][1]:
        scale += [f[0] for f in found]
        units += [f[1] for f in found]
        return scale, units, notes
    scale += [1.0, 1.0]
    units += ["pixel", "pixel"]
    notes.append(f"{path.name}: no calibration recorded: the image is shown in pixels")
    return scale, units, notes


def _stack_axis(axis: Mapping) -> tuple[float, str]:
    """A stack axis (time, tilt, frame) in its own unit when one is known."""
    unit = unit_of(axis.get("units") or "")
    scale = axis.get("scale")
    try:
        scale = float(scale)
    except (TypeError, ValueError):
        scale = 1.0
    if not scale or not np.isfinite(scale) or scale <= 0:
        scale = 1.0
    if unit and dimension(unit) == "length":
        return convert(scale, unit, "nm"), "nm"
    if unit and dimension(unit) == "time":
        return convert(scale, unit, "s"), "s"
    return 1.0, ""  # frames, or a unit napari could not compare


@dataclass(frozen=True)
class LayerCalibration:
    """The calibration of an image layer, whichever reader opened it.

    ``pixel_size_nm`` is None when nothing records one; ``source`` says where it came from
    in words; ``metadata`` has the layout of ``layer.metadata["emcal"]`` that the docks
    read (:func:`open_image`'s), filled from what was found.
    """

    pixel_size_nm: float | None
    source: str
    instrument: InstrumentMetadata
    metadata: dict[str, Any]

    @property
    def magnification(self) -> float | None:
        return self.instrument.value("magnification")


def layer_calibration(
    metadata: Mapping | None,
    scale=None,
    units=None,
    source_path=None,
    shape=None,
) -> LayerCalibration:
    """An image layer's calibration through one metadata model, from (first found):

    1. this project's metadata in the layer (``metadata["emcal"]``: its ``instrument``
       values, or a ``pixel_size_nm``), as our readers and samples put it there;
    2. the layer's source file (``layer.source.path``), read again (lazily) through
       :func:`open_signals` when it is an instrument image: the signal of the layer's
       ``shape`` when the file holds several;
    3. the layer's ``scale`` and ``units`` when the units are a length (napari's builtins,
       napari-rosettasciio, a scale set by hand).

    Parameters
    ----------
    metadata : mapping or None
        ``layer.metadata``.
    scale, units : sequences, optional
        ``layer.scale`` and ``layer.units`` (strings or pint units).
    source_path : path-like, optional
        ``layer.source.path``.
    shape : tuple, optional
        ``layer.data.shape``.
    """
    metadata = metadata or {}
    emcal = metadata.get("emcal") if isinstance(metadata.get("emcal"), Mapping) else {}
    if isinstance(emcal.get("instrument"), Mapping):
        inst = InstrumentMetadata.from_json(emcal["instrument"], emcal.get("source"))
        if "pixel_size" in inst:
            pixel = convert(inst.value("pixel_size")[-1], "m", "nm")
            return LayerCalibration(pixel, inst.source("pixel_size"), inst, dict(emcal))
    if _positive(emcal.get("pixel_size_nm")):
        inst = InstrumentMetadata(emcal.get("source"))
        pixel = float(emcal["pixel_size_nm"])
        inst.set("pixel_size", (convert(pixel, "nm", "m"),) * 2, "the layer's metadata")
        return LayerCalibration(pixel, "the layer's metadata", inst, dict(emcal))
    if source_path and holds_image(source_path):
        try:
            signals = open_signals(source_path, lazy=True)
        except InvalidDataError:
            signals = []
        fitting = [s for s in signals if shape is None or tuple(s.data.shape) == tuple(shape)]
        if fitting:
            found = dict(fitting[0].metadata)
            inst = InstrumentMetadata.from_json(found["instrument"], source_path)
            pixel = found.get("pixel_size_nm")
            where = inst.source("pixel_size") if pixel else None
            return LayerCalibration(pixel, where or "not recorded in the source file", inst, found)
    unit = unit_of(_unit_text(units[-1])) if units is not None and len(units) else None
    if unit and dimension(unit) == "length" and scale is not None and len(scale):
        pixel = convert(float(scale[-1]), unit, "nm")
        if _positive(pixel):
            inst = InstrumentMetadata()
            where = f"the layer's scale ({float(scale[-1]):g} {unit} per pixel)"
            inst.set("pixel_size", tuple(convert(float(v), unit, "m") for v in scale[-2:]), where)
            return LayerCalibration(
                pixel, where, inst, {"pixel_size_nm": pixel, "instrument": inst.to_json()}
            )
    inst = InstrumentMetadata()
    inst.note("no pixel size: the layer has no length unit, metadata or source file")
    return LayerCalibration(None, "none recorded", inst, dict(emcal))


def _positive(value) -> bool:
    try:
        return float(value) > 0 and np.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _unit_text(unit) -> str:
    """A pint unit (napari's ``layer.units``) or a text as its symbol."""
    if hasattr(unit, "dimensionality"):
        return format(unit, "~")
    return str(unit)


_RECIPROCAL = re.compile(r"^\s*(?:1\s*/\s*([^\s^]+)|([^\s^]+)\s*\^?\s*-1)\s*$")


def _other_axis(axis: Mapping) -> tuple[float, str] | None:
    """An image axis in reciprocal length (as 1/nm) or angle (as mrad), or None."""
    text = str(axis.get("units") or "").strip()
    try:
        scale = float(axis.get("scale"))
    except (TypeError, ValueError):
        return None
    if not np.isfinite(scale) or scale <= 0:
        return None
    match = _RECIPROCAL.match(text)
    if match:
        unit = unit_of(match.group(1) or match.group(2))
        if unit and dimension(unit) == "length":
            # s per unit -> per nm: s * (1 nm in that unit)
            return scale * convert(1.0, "nm", unit), "1/nm"
        return None
    unit = unit_of(text)
    if unit and dimension(unit) == "angle":
        return convert(scale, unit, "mrad"), "mrad"
    return None


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
