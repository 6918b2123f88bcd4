"""A series SerialEM recorded: its images and, per image, what its ``.mdoc`` says.

SerialEM writes beside an image stack ``STACK.mrc`` an autodoc ``STACK.mrc.mdoc`` with one
``[ZValue = n]`` section per image (``ImageShift``, ``StagePosition``, ``Defocus``,
``Intensity``, ``SpotSize``, ``ProbeMode``, ``MagIndex``, ``CameraIndex``, ``Binning``,
``ExposureTime``, ``MinMaxMean``, ``DateTime``/``TimeStamp``...). Single images saved as
separate files are listed in an ``.mdoc`` whose sections name them (``[Image = name]``
or ``SubFramePath``). mdocfile parses the ``.mdoc``; mrcfile and this project's image
reader (:func:`napari_emcal.io.images.open_image`) read the images. This module only maps
the keys onto :class:`Record` and groups the records by the settings a calibration
belongs to.

Pure Python/NumPy: no Qt, no napari.
"""

from __future__ import annotations

import contextlib
import io
import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PureWindowsPath

import numpy as np

from .._files import check_readable
from ..errors import InvalidDataError
from ..io.writers import serialem_rows_along_camera_y

__all__ = ["SERIES_KEY", "Record", "Series", "read_mdoc", "read_series", "group_key"]

#: Where a napari layer's ``metadata["emcal"]`` names the series file it shows.
SERIES_KEY = "serialem_series"

#: SerialEM's probe modes in its files: 1 microprobe, 0 nanoprobe.
PROBE_NAMES = {0: "nano", 1: "micro"}
#: The date formats SerialEM has written over the years.
_TIME_FORMATS = ("%d-%b-%y %H:%M:%S", "%d-%b-%Y %H:%M:%S", "%Y-%b-%d %H:%M:%S")


@dataclass
class Record:
    """One image of a series and its settings, as its ``.mdoc`` section records them.

    Attributes
    ----------
    index : int
        Position in the series (the stack's Z, or the section's order).
    image : ndarray or None
        The image as stored (rows, columns of the file), or None when only the ``.mdoc``
        was read.
    image_shift : (float, float) or None
        ``ImageShift`` (x, y) in the microscope's image-shift units.
    stage : (float, float) or None
        ``StagePosition`` (x, y), µm.
    defocus_um, intensity, spot, probe, mag_index, magnification, camera, binning,
    exposure_s : settings or None
        ``Defocus`` (µm), ``Intensity`` (SerialEM's own value), ``SpotSize``,
        ``ProbeMode`` (``micro``/``nano``), ``MagIndex``, ``Magnification``,
        ``CameraIndex``, ``Binning``, ``ExposureTime`` (s). None: not in the file.
    mean_counts : float or None
        ``MinMaxMean``'s mean, doubled when ``DividedBy2`` (SerialEM halved the counts to
        fit 16 bits).
    time_s : float or None
        ``TimeStamp`` (s) or ``DateTime`` (1 s resolution), None when neither is there.
    pixel_spacing_a : float or None
        ``PixelSpacing`` (Å, of the stored binned pixel).
    divided_by_2 : bool
        Whether SerialEM halved the stored counts.
    """

    index: int
    image: np.ndarray | None = None
    image_shift: tuple[float, float] | None = None
    stage: tuple[float, float] | None = None
    defocus_um: float | None = None
    intensity: float | None = None
    spot: int | None = None
    probe: str | None = None
    mag_index: int | None = None
    magnification: float | None = None
    camera: int | None = None
    binning: float | None = None
    exposure_s: float | None = None
    mean_counts: float | None = None
    time_s: float | None = None
    pixel_spacing_a: float | None = None
    divided_by_2: bool = False

    def counts_mean(self) -> float:
        """Mean counts of the image as SerialEM read them (the stored image's mean,
        doubled when ``DividedBy2``; the ``.mdoc``'s ``MinMaxMean`` without an image)."""
        if self.image is not None:
            return float(np.mean(self.image, dtype=np.float64)) * (
                2.0 if self.divided_by_2 else 1.0
            )
        if self.mean_counts is None:
            raise InvalidDataError(
                f"record {self.index}: neither its image nor MinMaxMean is available"
            )
        return float(self.mean_counts)

    def setting(self) -> dict:
        """The settings a calibration is made at (for tables and the history)."""
        return {
            "mag_index": self.mag_index,
            "camera": self.camera,
            "binning": self.binning,
            "spot": self.spot,
            "probe": self.probe,
        }


def group_key(record: Record) -> tuple:
    """What a calibration belongs to: (mag index, camera, binning, spot, probe)."""
    return (record.mag_index, record.camera, record.binning, record.spot, record.probe)


@dataclass
class Series:
    """The records of a series, the files they came from and what was noticed reading
    them.

    Attributes
    ----------
    records : list of Record
    mdoc : Path
        The ``.mdoc`` read.
    images : Path or None
        The image stack (None when the images are separate files or absent).
    row_is_camera_y : bool or None
        Whether rows of the stored array run along SerialEM's camera y (MRC: yes, SerialEM
        reverses the rows of its memory image, whose rows run against camera y, when it
        writes MRC) or against it (TIFF, written in memory order); None when unknown
        (another format, or files of both kinds).
        :func:`~napari_emcal.io.writers.serialem_rows_along_camera_y`.
    notes : list of str
    """

    records: list[Record]
    mdoc: Path
    images: Path | None = None
    row_is_camera_y: bool | None = None
    notes: list[str] = field(default_factory=list)

    def groups(self) -> dict[tuple, list[Record]]:
        """Records grouped by :func:`group_key`, in series order."""
        out: dict[tuple, list[Record]] = {}
        for record in self.records:
            out.setdefault(group_key(record), []).append(record)
        return out

    def with_defocus(self) -> dict[float, list[Record]]:
        """Records grouped by ``Defocus`` rounded to 0.1 µm (a series whose defocus
        changes holds one calibration per defocus)."""
        out: dict[float, list[Record]] = {}
        for record in self.records:
            key = None if record.defocus_um is None else round(record.defocus_um, 1)
            out.setdefault(key, []).append(record)
        return out


def read_mdoc(path) -> list[dict]:
    """The sections of a SerialEM ``.mdoc`` (parsed by mdocfile), global keys merged
    into each, missing values dropped.

    Raises
    ------
    InvalidDataError
        The file is missing or is no ``.mdoc`` mdocfile can read.
    """
    import mdocfile
    import pandas as pd

    path = Path(path)
    check_readable(path)  # a FIFO or a device: said so, never read
    if not path.is_file():
        raise InvalidDataError(f"No such .mdoc: {path}")
    try:
        # mdocfile prints about the keys it maps or does not know
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            frame = mdocfile.read(path)
    except Exception as exc:  # mdocfile raises pydantic and parsing errors of many kinds
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidDataError(f"cannot read {path} as a SerialEM .mdoc: {first}") from exc

    def present(value) -> bool:
        if isinstance(value, (tuple, list, np.ndarray)):
            return True
        try:
            return not bool(pd.isna(value))
        except (TypeError, ValueError):
            return True

    return [
        {k: v for k, v in section.items() if present(v)} for section in frame.to_dict("records")
    ]


def read_series(path, *, load_images: bool = True) -> Series:
    """Read a series: ``STACK.mrc`` (with ``STACK.mrc.mdoc`` beside it), or an ``.mdoc``
    (its ``ImageFile`` stack beside it, or the single images its sections name).

    Parameters
    ----------
    path : path-like
        The stack or the ``.mdoc``.
    load_images : bool
        Read the images (False: the ``.mdoc`` alone, e.g. for beam intensity from
        ``MinMaxMean``).

    Raises
    ------
    InvalidDataError
        No ``.mdoc``, no section, a stack whose image count differs from the sections,
        or images that cannot be read.
    """
    path = Path(path)
    check_readable(path)  # a missing file, a FIFO or a device: said so, never read
    notes: list[str] = []
    if path.suffix.lower() == ".mdoc":
        mdoc = path
        stack = None
    else:
        mdoc = path.with_name(path.name + ".mdoc")
        stack = path
        if not mdoc.is_file():
            raise InvalidDataError(
                f"{path.name}: no {mdoc.name} beside it; SerialEM's settings of each image "
                "(image shift, stage position, mag index...) are in that file"
            )
        if not path.is_file():
            raise InvalidDataError(f"No such file: {path}")
    sections = read_mdoc(mdoc)
    if not sections:
        raise InvalidDataError(f"{mdoc.name} holds no image section")
    if stack is None and load_images:
        named = sections[0].get("ImageFile")
        if named is not None and (mdoc.parent / Path(str(named)).name).is_file():
            stack = mdoc.parent / Path(str(named)).name
    records = [_record(i, s) for i, s in enumerate(sections)]
    row_is_camera_y = None
    if load_images:
        if stack is not None:
            images = _read_stack(stack)
            z_values = [int(s.get("ZValue", i)) for i, s in enumerate(sections)]
            if max(z_values) >= images.shape[0] or min(z_values) < 0:
                raise InvalidDataError(
                    f"{mdoc.name} lists Z values up to {max(z_values)} but {stack.name} "
                    f"holds {images.shape[0]} image(s)"
                )
            for record, z in zip(records, z_values, strict=True):
                record.image = np.asarray(images[z])
            row_is_camera_y = serialem_rows_along_camera_y(stack)
        else:
            row_is_camera_y = _read_single_images(mdoc, sections, records, notes)
    times = [r.time_s for r in records]
    if any(t is None for t in times):
        notes.append("some sections record no time: records are ordered by their position")
    return Series(records, mdoc, stack, row_is_camera_y, notes)


def _read_stack(path: Path) -> np.ndarray:
    import mrcfile

    suffix = path.suffix.lower()
    if suffix in (".mrc", ".st", ".map", ".mrcs"):
        try:
            with mrcfile.open(path, mode="r", permissive=False) as mrc:
                data = np.array(mrc.data)
        except Exception as exc:  # mrcfile raises ValueError and OSError of many kinds
            raise InvalidDataError(f"cannot read {path} as MRC: {exc}") from exc
    else:
        import tifffile

        try:
            data = tifffile.imread(path)
        except Exception as exc:
            raise InvalidDataError(f"cannot read {path}: {exc}") from exc
    if data.ndim == 2:
        data = data[None]
    if data.ndim != 3:
        raise InvalidDataError(f"{path.name}: expected a stack of 2D images, got {data.shape}")
    return data


def _read_single_images(mdoc: Path, sections, records, notes) -> bool | None:
    """Images named by the sections (``Image`` title or ``SubFramePath``), read through
    :func:`~napari_emcal.io.images.open_image`."""
    from ..io.images import open_image

    flips = set()
    missing, summed = [], []
    for section, record in zip(sections, records, strict=True):
        name = section.get("Image") or section.get("SubFramePath")
        if name is None:
            missing.append(str(record.index))
            continue
        candidate = mdoc.parent / PureWindowsPath(str(name)).name
        if not candidate.is_file():
            missing.append(f"{record.index} ({candidate.name})")
            continue
        if candidate.suffix.lower() in (".mrc", ".st", ".map", ".mrcs", ".tif", ".tiff"):
            frames = _read_stack(candidate)
            # a frame-set's movie: the image is the sum of its frames
            record.image = frames.sum(axis=0, dtype=np.float64) if len(frames) > 1 else frames[0]
            if len(frames) > 1:
                summed.append(str(record.index))
        else:
            record.image, _ = open_image(candidate)
        flips.add(serialem_rows_along_camera_y(candidate))
    if summed:
        notes.append(f"the frames of record(s) {', '.join(summed[:8])} were summed")
    if missing:
        notes.append(
            f"no image file beside {mdoc.name} for section(s) {', '.join(missing[:8])}"
            + ("..." if len(missing) > 8 else "")
        )
    return flips.pop() if len(flips) == 1 else None


def _pair(value) -> tuple[float, float] | None:
    try:
        x, y = (float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return (x, y) if math.isfinite(x) and math.isfinite(y) else None


def _number(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _time(section) -> float | None:
    stamp = _number(section.get("TimeStamp"))
    if stamp is not None:
        return stamp
    text = section.get("DateTime")
    if text is None:
        return None
    text = " ".join(str(text).split())
    for fmt in _TIME_FORMATS:
        try:
            return datetime.strptime(text, fmt).timestamp()
        except ValueError:
            pass
    return None


def _record(index: int, section: dict) -> Record:
    integer = lambda key: None if _number(section.get(key)) is None else int(section[key])  # noqa: E731
    probe_value = _number(section.get("ProbeMode"))
    mean = section.get("MinMaxMean")
    mean_counts = None
    if mean is not None:
        try:
            mean_counts = float(mean[2])
        except (TypeError, ValueError, IndexError):
            mean_counts = None
    divided = bool(section.get("DividedBy2", False)) and str(section.get("DividedBy2")) != "0"
    if mean_counts is not None and divided:
        mean_counts *= 2.0
    return Record(
        index=index,
        image_shift=_pair(section.get("ImageShift")),
        stage=_pair(section.get("StagePosition")),
        defocus_um=_number(section.get("Defocus")),
        intensity=_number(section.get("Intensity")),
        spot=integer("SpotSize"),
        probe=None if probe_value is None else PROBE_NAMES.get(int(probe_value)),
        mag_index=integer("MagIndex"),
        magnification=_number(section.get("Magnification")),
        camera=integer("CameraIndex"),
        binning=_number(section.get("Binning")),
        exposure_s=_number(section.get("ExposureTime")),
        mean_counts=mean_counts,
        time_s=_time(section),
        pixel_spacing_a=_number(section.get("PixelSpacing")),
        divided_by_2=divided,
    )
