"""Calibrations as SerialEM reads them: lines of ``SerialEMcalibrations.txt`` (and the
``ShutterDeadTime`` camera property of ``SerialEMproperties.txt``).

Field orders and conventions, from SerialEM's source (mastcu/SerialEM,
``ParameterIO.cpp`` ``WriteCalibration``/``ReadCalibration``, ``ShiftCalibrator.cpp``,
``ShiftManager.cpp``, ``BeamAssessor.cpp``, ``CalibCameraTiming.cpp``,
``Image/KImageStore.cpp``, ``Image/KStoreIMOD.cpp``; see docs/science.md):

- ``ImageShiftMatrix N`` followed by N lines ``magInd cam xpx xpy ypx ypy   mag``.
- ``StageToCameraMatrix magInd cam xpx xpy ypx ypy   focus   mag``; ``focus`` is the
  microscope's absolute focus during the calibration, which an ``.mdoc`` does not record:
  written as -999, SerialEM's own value for "not known".
- ``HighFocusISCal spot probe defocus intensity scale rotation crossover aperture
  magInd`` (the fields of ``HighFocusMagCal``); probe 1 micro, 0 nano; crossover and
  aperture 0 (not measured).
- ``BeamIntensityTable N magInd spot dontExtrap crossover aperture probe   mag``, then
  N lines ``current intensity`` (current in counts per unbinned pixel per second).
- ``ShutterDeadTime seconds``: a camera property (inside that camera's
  ``CameraProperties`` block of ``SerialEMproperties.txt``).

SerialEM's matrices map a change of the setting to camera coordinates: a point's image
shift is the one that brings it to the centre, so the image content moves by
``−M · Δsetting`` (``ShiftManager.cpp``'s coordinate systems and its mouse-shift code).
Its camera coordinates are right-handed, y up its display, while it holds an image in
memory with row 0 at the top (``ShiftManager.cpp``: "Image coordinates ... Y is inverted
relative to camera coordinates"; ``KPixMap.cpp``: a top-down bitmap). SerialEM reverses
the rows when it writes MRC files (``KImageStore::convertForWriting(..., needFlipped)``
from ``KStoreMRC``/``KStoreIMOD``) and not when it writes TIFF (``tiffWriteSection(...,
inverted=1)``), so the stored array's rows run along camera y in an MRC file and against
it in a TIFF. Hence, from this project's matrix of the stored array
``A = [[dcol/dx, dcol/dy], [drow/dx, drow/dy]]``:

    xpx, xpy = −A[0]          ypx, ypy = −s · A[1]      (s = +1 MRC, −1 TIFF)

and a rotation from +col towards +row of the stored array is SerialEM's rotation (from
camera +x towards camera +y, ``MatScaleRotate``) times ``s``.

Pure Python/NumPy: no Qt, no napari.
"""

from __future__ import annotations

import numpy as np

from ..errors import InvalidDataError
from .intensity import BeamIntensity, DeadTime
from .series import Record
from .shifts import HighDefocusIS, ShiftFit

__all__ = [
    "UNKNOWN_FOCUS",
    "camera_matrix",
    "array_matrix",
    "image_shift_lines",
    "stage_lines",
    "high_focus_is_line",
    "beam_intensity_lines",
    "dead_time_line",
]

#: SerialEM's value of ``stageCalFocus`` before any stage calibration (SerialEM.cpp).
UNKNOWN_FOCUS = -999.0
SERIALEM_PROBE = {"micro": 1, "nano": 0}


def _sign(row_is_camera_y: bool | None) -> float:
    if row_is_camera_y is None:
        raise InvalidDataError(
            "the sense of the rows against SerialEM's camera y is not known for these images "
            "(known for MRC and TIFF files SerialEM wrote): cannot write SerialEM's matrix "
            "or rotation"
        )
    return 1.0 if row_is_camera_y else -1.0


def camera_matrix(matrix, row_is_camera_y: bool | None) -> np.ndarray:
    """SerialEM's ``[[xpx, xpy], [ypx, ypy]]`` from a stored-array matrix."""
    return -np.diag([1.0, _sign(row_is_camera_y)]) @ np.asarray(matrix, dtype=float)


def array_matrix(camera, row_is_camera_y: bool | None) -> np.ndarray:
    """The stored-array matrix from SerialEM's (the inverse of :func:`camera_matrix`)."""
    return -np.diag([1.0, _sign(row_is_camera_y)]) @ np.asarray(camera, dtype=float)


def _where(record: Record) -> tuple[int, int, int]:
    if record.mag_index is None or record.camera is None:
        raise InvalidDataError(
            "the .mdoc records no MagIndex or CameraIndex: SerialEM files its matrices by them"
        )
    mag = int(round(record.magnification)) if record.magnification else 0
    return record.mag_index, record.camera, mag


def _matrix_fields(matrix) -> str:
    m = np.asarray(matrix, dtype=float)
    return f"{m[0, 0]:f} {m[0, 1]:f} {m[1, 0]:f} {m[1, 1]:f}"


def image_shift_lines(fits: list[tuple[ShiftFit, Record]], row_is_camera_y) -> list[str]:
    """``ImageShiftMatrix N`` and its N lines, one per (fit, a record of its group)."""
    lines = [f"ImageShiftMatrix {len(fits)}"]
    for fit, record in fits:
        mag_index, camera, mag = _where(record)
        cam = camera_matrix(fit.matrix, row_is_camera_y)
        lines.append(f"{mag_index} {camera} {_matrix_fields(cam)}   {mag}")
    return lines


def stage_lines(fit: ShiftFit, record: Record, row_is_camera_y) -> list[str]:
    """One ``StageToCameraMatrix`` line (unbinned px per µm)."""
    mag_index, camera, mag = _where(record)
    cam = camera_matrix(fit.matrix, row_is_camera_y)
    return [
        f"StageToCameraMatrix {mag_index} {camera} {_matrix_fields(cam)}   "
        f"{UNKNOWN_FOCUS:f}   {mag}"
    ]


def high_focus_is_line(result: HighDefocusIS, record: Record, row_is_camera_y) -> str:
    """One ``HighFocusISCal`` line (the fields of ``HighFocusMagCal``)."""
    probe = SERIALEM_PROBE.get(str(record.probe or "").lower())
    missing = [
        name
        for name, value in (
            ("SpotSize", record.spot),
            ("ProbeMode", probe),
            ("Intensity", record.intensity),
            ("MagIndex", record.mag_index),
        )
        if value is None
    ]
    if missing:
        raise InvalidDataError(
            f"the .mdoc records no {', '.join(missing)}: SerialEM looks its high-focus "
            "calibrations up by them"
        )
    rotation = result.serialem_rotation_deg(bool(_sign(row_is_camera_y) > 0))
    return (
        f"HighFocusISCal {int(record.spot)} {probe} {result.defocus_um:f} "
        f"{float(record.intensity):f} {result.scale:f} {rotation:f} 0.000000 0 "
        f"{int(record.mag_index)}"
    )


def beam_intensity_lines(result: BeamIntensity, record: Record) -> list[str]:
    """``BeamIntensityTable`` and its ``current intensity`` lines."""
    mag_index, _, mag = _where(record)
    probe = SERIALEM_PROBE.get(str(record.probe or "").lower())
    if record.spot is None or probe is None:
        raise InvalidDataError(
            "the .mdoc records no SpotSize or ProbeMode: SerialEM files beam tables by them"
        )
    lines = [
        f"BeamIntensityTable {len(result.currents)} {mag_index} {int(record.spot)} 0 "
        f"0.000000 0 {probe}   {mag}"
    ]
    lines += [
        f"{current:f} {intensity:f}"
        for current, intensity in zip(result.currents, result.intensities, strict=True)
    ]
    return lines


def dead_time_line(result: DeadTime) -> str:
    """``ShutterDeadTime`` (s), SerialEM's advice of 0 when the line says none."""
    return f"ShutterDeadTime {max(result.dead_time_s, 0.0):.4f}"
