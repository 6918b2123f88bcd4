"""Simulated SerialEM tilt series ``.mdoc`` files (for tests, demos and benchmarks).

The files follow what SerialEM writes (its help, "File Formats and Other Documentation",
and published examples): for a tilt series, ``[ZValue = z]`` sections in acquisition order
with ``TiltAngle``, ``ExposureDose`` (e⁻/Å², the dose of that image) and
``PriorRecordDose`` (e⁻/Å², the dose of the tilt series' earlier images); for a frame-based
tilt series, first one ``[FrameSet = 0]`` section for the continuous exposure (its
``ExposureDose`` covers every frame, those recorded while the stage tilted between two
tilts included), then one ``[ZValue]`` section per tilt with the frames it was cut from,
``FrameTSStartEndFrames = first end`` (end exclusive).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from ..errors import InvalidParameterError

__all__ = [
    "bidirectional_angles",
    "dose_symmetric_angles",
    "write_frame_tilt_series_mdoc",
    "write_tilt_series_mdoc",
]


def dose_symmetric_angles(max_angle: float, step: float, group: int = 2, start: float = 0.0):
    """Tilt angles (degrees) in the order of a dose-symmetric series (Hagen et al. 2017):
    ``start``, then groups of ``group`` images alternating between the two sides."""
    if not (step > 0 and max_angle > 0 and group >= 1):
        raise InvalidParameterError("max_angle and step must be positive and group at least 1")
    plus = list(np.arange(start + step, start + max_angle + step / 2, step))
    minus = list(np.arange(start - step, start - max_angle - step / 2, -step))
    order, side = [start], 0
    while plus or minus:
        source = (plus, minus)[side] if (plus, minus)[side] else (minus, plus)[side]
        order += source[:group]
        del source[:group]
        side = 1 - side
    return [float(round(a, 6)) for a in order]


def bidirectional_angles(max_angle: float, step: float, start: float = 0.0, first: int = -1):
    """Tilt angles of a bidirectional series: from ``start`` to one end (``first`` = -1:
    the negative end), then from ``start + step`` to the other end."""
    one = list(np.arange(start, start + first * (max_angle + step / 2), first * step))
    other = list(
        np.arange(start - first * step, start - first * (max_angle + step / 2), -first * step)
    )
    return [float(round(a, 6)) for a in one + other]


def _header(lines: list[str], pixel_a: float, voltage_kv: float, image_file: str) -> None:
    lines += [
        f"PixelSpacing = {pixel_a:g}",
        f"Voltage = {voltage_kv:g}",
        f"ImageFile = {image_file}",
        "ImageSize = 4096 4096",
        "DataMode = 1",
        "",
        "[T = SerialEM: napari-emcal simulated tilt series]",
        "",
    ]


def write_tilt_series_mdoc(
    path,
    angles,
    dose_per_tilt: float = 3.0,
    *,
    start: datetime | None = datetime(2026, 11, 20, 14, 0, 0),
    seconds_per_tilt: float = 30.0,
    exposure_s: float = 1.0,
    pixel_a: float = 1.5,
    voltage_kv: float = 300,
) -> Path:
    """A tilt series' ``.mdoc``: one ``[ZValue]`` per tilt in acquisition order with
    ``TiltAngle``, ``ExposureDose``, ``PriorRecordDose`` and, when ``start`` is given,
    ``DateTime`` (SerialEM's ``dd-Mon-yy HH:MM:SS``, no UTC offset). ``dose_per_tilt`` may
    be one number or one per tilt (e⁻/Å²)."""
    angles = [float(a) for a in angles]
    doses = np.broadcast_to(np.asarray(dose_per_tilt, float), (len(angles),))
    lines: list[str] = []
    _header(lines, pixel_a, voltage_kv, Path(path).stem + ".mrc")
    prior = 0.0
    for z, (angle, dose) in enumerate(zip(angles, doses)):
        lines += [
            f"[ZValue = {z}]",
            f"TiltAngle = {angle:g}",
            f"ExposureDose = {dose:g}",
            f"PriorRecordDose = {prior:g}",
            f"ExposureTime = {exposure_s:g}",
            f"PixelSpacing = {pixel_a:g}",
            "SpotSize = 8",
            "Magnification = 64000",
        ]
        if start is not None:
            when = start + timedelta(seconds=z * seconds_per_tilt)
            lines.append(f"DateTime = {when.strftime('%d-%b-%y  %H:%M:%S')}")
        lines.append("")
        prior += float(f"{dose:g}")
    path = Path(path)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_frame_tilt_series_mdoc(
    path,
    angles,
    frame_dose: float = 0.64,
    *,
    frames_per_tilt: int = 12,
    frames_between: int = 10,
    frame_time_s: float = 0.095,
    pixel_a: float = 1.2827,
    voltage_kv: float = 300,
) -> Path:
    """A frame-based tilt series' ``.mdoc``: a ``[FrameSet = 0]`` section for the whole
    continuous exposure, then a ``[ZValue]`` section per tilt (no ``DateTime``), each with
    ``TiltAngle``, ``FrameTSStartEndFrames``, ``PriorRecordDose`` and ``ExposureDose``.

    Every frame gets ``frame_dose`` (e⁻/Å²): the frame set's ``ExposureDose`` counts all
    ``n (frames_per_tilt + frames_between) - frames_between`` frames, a tilt's only its
    own ``frames_per_tilt``."""
    angles = [float(a) for a in angles]
    if frames_per_tilt < 1 or frames_between < 0:
        raise InvalidParameterError("frames_per_tilt must be at least 1, frames_between >= 0")
    n = len(angles)
    total_frames = n * (frames_per_tilt + frames_between) - frames_between
    tilt_dose = float(f"{frame_dose * frames_per_tilt:g}")
    lines: list[str] = []
    _header(lines, pixel_a, voltage_kv, Path(path).stem + ".mrc")
    lines += [
        "[FrameSet = 0]",
        f"TiltAngle = {angles[0]:g}",
        f"ExposureDose = {frame_dose * total_frames:g}",
        f"ExposureTime = {frame_time_s * total_frames:g}",
        f"PixelSpacing = {pixel_a:g}",
        "SpotSize = 9",
        "Magnification = 33000",
        f"NumSubFrames = {total_frames}",
        f"FrameDosesAndNumber = {frame_dose:g} {total_frames}",
        "DateTime = 20-Nov-26  14:00:00",
        "",
    ]
    prior = 0.0
    for z, angle in enumerate(angles):
        first = z * (frames_per_tilt + frames_between)
        lines += [
            f"[ZValue = {z}]",
            f"TiltAngle = {angle:g}",
            f"FrameTSStartEndFrames = {first} {first + frames_per_tilt}",
            f"PriorRecordDose = {prior:g}",
            f"ExposureDose = {tilt_dose:g}",
            "",
        ]
        prior += tilt_dose
    path = Path(path)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
