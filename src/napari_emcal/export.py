"""Calibrations in the forms the next tools read, each with its convention stated.

- :func:`libertem_com`: the twin's ``scan_rotation`` and ``flip_y`` as LiberTEM's
  centre-of-mass analysis takes them. LiberTEM's ``apply_correction`` turns a detector
  vector by ``rotate_deg(scan_rotation) @ flip_y``, which is exactly this project's
  ``rotation_flip_matrix`` (docs/conventions.md): the values pass unchanged, and a test
  runs them through LiberTEM's own function.
- :func:`py4dstem_calibration`: the same calibration as py4DSTEM's ``Calibration`` values.
  py4DSTEM turns a detector vector ``(qx, qy)`` (its x is the first array axis, rows) into
  the scan frame by ``R(QR_rotation) @ (qx, qy)``, or ``R @ (qy, qx)`` with ``QR_flip``
  (its transpose), ``R(φ) = [[cos φ, −sin φ], [sin φ, cos φ]]``. This project's
  ``R(θ)·F`` on (y, x) equals that with ``QR_rotation = −θ`` without the flip and
  ``90° − θ`` with it; the origin ``(qx0, qy0)`` is ``(cy, cx)``. A test checks it through
  py4DSTEM's own vector calibration where py4DSTEM is installed.
- :func:`serialem_pixel_lines`: a pixel-size table as SerialEM ``RotationAndPixel`` lines
  (camera properties): mag index, change of rotation from the next lower mag index (999
  when not measured), absolute rotation (999: a grating does not show the stage axes),
  pixel size (nm).
- :func:`serialem_high_defocus_lines`: a high-defocus table as SerialEM
  ``HighFocusMagCal`` lines (``SerialEMcalibrations.txt``): spot, probe (1 micro, 0 nano),
  defocus (µm), intensity, scale, rotation, crossover (0: unknown), aperture (0), mag
  index (0, as SerialEM's own calibration stores it). SerialEM's scale and rotation are
  those of the defocused image relative to focus, as here; its angles run from +x towards
  +y of the stored array (counter-clockwise as it displays an image with the first row at
  the bottom), the same numbers as this project's for the same array.
- MotionCor2's ``-Mag`` triple: :meth:`~napari_emcal.grating.PixelSizeResult.distortion`.
- :func:`dose_columns`, :func:`write_dose_text`: per image, in acquisition order, the dose
  before it and its own dose (e⁻/Å²), the two numbers dose-weighting programs take.
- :func:`write_mdoc_doses`: a SerialEM ``.mdoc`` with ``ExposureDose`` (the image's dose)
  and ``PriorRecordDose`` (the dose of the earlier images) set from the dose table, the keys
  SerialEM writes when it has its own dose calibration; everything else is copied as is.
- :func:`stem_axes`, :func:`write_hspy`: a 4D STEM dataset (or a 2D image) as a
  HyperSpy/pyxem signal written by RosettaSciIO, with its axes calibrated: navigation
  ``y``, ``x`` (the scan, nm, in array order as HyperSpy keeps them) and signal ``ky``,
  ``kx`` (the detector, mrad from the camera length and pixel size, offset so that the
  beam centre is 0; pixels when a length is unknown). HyperSpy's axes hold no rotation
  between scan and detector: the twin's ``scan_rotation`` and ``flip_y`` go into the
  original metadata with their convention.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ._files import atomic_write_text
from .errors import InvalidDataError, InvalidParameterError
from .geometry import wrap_angle

__all__ = [
    "dose_columns",
    "libertem_com",
    "py4dstem_calibration",
    "serialem_high_defocus_lines",
    "serialem_pixel_lines",
    "stem_axes",
    "write_dose_text",
    "write_hspy",
    "write_py4dstem_calibration",
    "write_serialem_high_defocus",
    "write_serialem_pixel",
    "write_mdoc_doses",
]


def libertem_com(params) -> dict:
    """LiberTEM centre-of-mass arguments of a twin: ``scan_rotation`` (degrees),
    ``flip_y``, and the beam centre ``cy``, ``cx`` (detector pixels)."""
    return {
        "scan_rotation": float(params.scan_rotation),
        "flip_y": bool(params.flip_y),
        "cy": float(params.cy),
        "cx": float(params.cx),
    }


def write_libertem_com(params, path) -> Path:
    """:func:`libertem_com` as a JSON file with its convention."""
    document = {
        "format": "LiberTEM CoM parameters (napari-emcal)",
        "convention": "libertem.udf.com.apply_correction(y, x, scan_rotation, flip_y): "
        "detector vector -> scan vector by rotate_deg(scan_rotation) @ flip_y",
        **libertem_com(params),
    }
    atomic_write_text(path, json.dumps(document, indent=2))
    return Path(path)


def py4dstem_calibration(params) -> dict:
    """py4DSTEM ``Calibration`` values of a twin (module docstring for the convention).

    ``QR_rotation_degrees``, ``QR_flip``, the origin ``qx0_mean``/``qy0_mean`` (detector
    pixels), ``R_pixel_size`` in Å per scan step and ``Q_pixel_size`` in mrad per detector
    pixel (the scattering angle at the specimen, pixel size / camera length), with their
    units as py4DSTEM names them.
    """
    theta, flip = float(params.scan_rotation), bool(params.flip_y)
    out = {
        "QR_rotation_degrees": wrap_angle(90.0 - theta if flip else -theta),
        "QR_flip": flip,
        "qx0_mean": float(params.cy),
        "qy0_mean": float(params.cx),
        "R_pixel_size": float(params.scan_pixel_size) * 1e10,
        "R_pixel_units": "A",
    }
    if params.camera_length > 0 and params.detector_pixel_size > 0:
        out["Q_pixel_size"] = float(params.detector_pixel_size / params.camera_length) * 1e3
        out["Q_pixel_units"] = "mrad"
    return out


def write_py4dstem_calibration(params, path, uncertainty: dict | None = None) -> Path:
    """:func:`py4dstem_calibration` as JSON, with the convention, how to apply it, and the
    standard errors of the rotation (degrees) and origin (pixels) when given."""
    values = py4dstem_calibration(params)
    document = {
        "format": "py4DSTEM calibration values (napari-emcal)",
        "convention": "a detector vector (qx, qy) = (row, column) turns into the scan frame "
        "by R(QR_rotation) @ (qx, qy), or R @ (qy, qx) when QR_flip (py4DSTEM's "
        "BraggVectors calibration and the phase reconstructions' rotation and transpose)",
        "apply": "cal = datacube.calibration; cal.set_QR_rotation_degrees(QR_rotation_degrees); "
        "cal.set_QR_flip(QR_flip); cal.set_qx0_mean(qx0_mean); cal.set_qy0_mean(qy0_mean); "
        "cal.set_R_pixel_size(R_pixel_size); cal.set_R_pixel_units('A'); "
        "cal.set_Q_pixel_size(Q_pixel_size); cal.set_Q_pixel_units('mrad'). For the phase "
        "reconstructions: force_com_rotation=QR_rotation_degrees, force_com_transpose=QR_flip",
        **values,
    }
    sigma = uncertainty or {}
    errors = {
        target: float(sigma[name])
        for name, target in (
            ("scan_rotation", "QR_rotation_degrees"),
            ("cy", "qx0_mean"),
            ("cx", "qy0_mean"),
        )
        if sigma.get(name) is not None
    }
    if errors:
        document["standard_errors"] = errors
    atomic_write_text(path, json.dumps(document, indent=2))
    return Path(path)


#: SerialEM's probe modes: ``probeMode`` 1 for microprobe, 0 for nanoprobe.
SERIALEM_PROBE = {"micro": 1, "microprobe": 1, "nano": 0, "nanoprobe": 0}
#: SerialEM writes 999 for a rotation it does not know.
SERIALEM_UNKNOWN = 999


def serialem_pixel_lines(table, mag_index: dict | None = None) -> tuple[list[str], list[str]]:
    """``RotationAndPixel`` lines of a pixel-size table, and what was left out and why.

    Parameters
    ----------
    table : PixelSizeTable
        Rows with ``magnification`` and ``pixel_size_nm``; the lines hold the unbinned
        camera's pixel size (``pixel_size_nm`` / the camera's ``binning``). A row whose
        binning above 1 is unconfirmed is left out.
    mag_index : dict, optional
        SerialEM's mag index for each nominal magnification of the table; where it has
        none, the row's own ``mag_index`` (typed into the table).

    Returns
    -------
    lines, skipped : list of str
        The lines in order of mag index (for a camera's ``CameraProperties`` block), and a
        sentence per row not written.
    """
    from .grating.table import UNCONFIRMED

    frame = table.frame
    if frame.empty:
        raise InvalidDataError("The pixel-size table is empty: nothing to export.")
    rows, skipped = [], []
    for _, row in frame.iterrows():
        mag = row.get("magnification")
        index = (mag_index or {}).get(float(mag)) if mag == mag else None
        own = row.get("mag_index")
        if index is None and own is not None and own == own:
            index = int(own)
        if index is None:
            skipped.append(
                f"{row['image'] or 'a row'}: no SerialEM mag index for magnification {mag}"
            )
            continue
        if row["binning"] != 1 and row["binning_source"] == UNCONFIRMED:
            skipped.append(
                f"{row['image'] or 'a row'}: camera binning {row['binning']} unconfirmed "
                "(older tables kept the finder's working reduction there): type the "
                "camera's binning into the table"
            )
            continue
        rows.append((int(index), float(row["unbinned_pixel_size_nm"]), row))
    if not rows:
        raise InvalidParameterError(
            "No row of the table has a SerialEM mag index: type them into the table's "
            "'Mag index' column, or give one per magnification (e.g. --mag-index 29000=27)."
        )
    rows.sort(key=lambda r: r[0])
    lines, previous = [], None
    for index, pixel, row in rows:
        lines.append(
            f"RotationAndPixel {index} {_delta_rotation(previous, index, row):g} "
            f"{SERIALEM_UNKNOWN} {pixel:.5g}"
        )
        previous = (index, row)
    return lines, skipped


def _delta_rotation(previous, index: int, row) -> float:
    """SerialEM's change of rotation from the next lower mag index: the change of the grid
    angle, when the row below is that mag index and the change is not ambiguous; else 999."""
    from .grating.table import grid_rotation

    if previous is None or previous[0] != index - 1:
        return SERIALEM_UNKNOWN
    change = float(row["angle_deg"]) - float(previous[1]["angle_deg"])
    if change != change:
        return SERIALEM_UNKNOWN
    wrapped, ambiguous = grid_rotation(change, row["mode"])
    return SERIALEM_UNKNOWN if ambiguous else round(float(wrapped), 3)


def serialem_high_defocus_lines(table) -> tuple[list[str], list[str]]:
    """``HighFocusMagCal`` lines of a high-defocus table, and what was left out and why.

    A row needs its spot size, probe mode (micro or nano) and intensity: SerialEM looks
    calibrations up by them. The intensity must be SerialEM's own ``Intensity`` value (as
    its ``.mdoc`` files record it), not a C2 percentage.
    """
    frame = table.frame
    if frame.empty:
        raise InvalidDataError("The high-defocus table is empty: nothing to export.")
    lines, skipped = [], []
    for number, (_, row) in enumerate(frame.iterrows(), start=1):
        probe = SERIALEM_PROBE.get(str(row.get("probe") or "").strip().lower())
        spot, intensity = row.get("spot"), row.get("intensity")
        missing = [
            name
            for name, ok in (
                ("spot size", pd.notna(spot)),
                ("probe mode (micro or nano)", probe is not None),
                ("intensity", pd.notna(intensity)),
            )
            if not ok
        ]
        if missing:
            skipped.append(f"row {number} ({row['defocus_um']:g} µm): no {', '.join(missing)}")
            continue
        lines.append(
            f"HighFocusMagCal {int(spot)} {probe} {float(row['defocus_um']):f} "
            f"{float(intensity):f} {float(row['scale']):f} {float(row['rotation_deg']):f} "
            "0.000000 0 0"
        )
    if not lines:
        raise InvalidDataError(
            "No row of the table has spot size, probe mode and intensity, which SerialEM "
            "looks its calibrations up by: " + "; ".join(skipped)
        )
    return lines, skipped


def write_serialem_lines(lines: list[str], skipped: list[str], path, what: str) -> str:
    """Write SerialEM lines to ``path``; a sentence saying what was written and left out."""
    atomic_write_text(path, "\n".join(lines) + "\n")
    message = f"{len(lines)} {what} line(s) written to {Path(path).name}"
    if skipped:
        message += f"; left out: {'; '.join(skipped)}"
    return message


def write_serialem_pixel(table, path, mag_index: dict | None = None) -> str:
    """:func:`serialem_pixel_lines` written to ``path``; what was written, in words."""
    return write_serialem_lines(*serialem_pixel_lines(table, mag_index), path, "RotationAndPixel")


def write_serialem_high_defocus(table, path) -> str:
    """:func:`serialem_high_defocus_lines` written to ``path``; what was written, in words."""
    return write_serialem_lines(*serialem_high_defocus_lines(table), path, "HighFocusMagCal")


def dose_columns(table):
    """``(images, prior, dose)`` in acquisition order (by time, then entry order): each
    image's name, the dose of all earlier images and its own dose, e⁻/Å².

    Raises
    ------
    InvalidDataError
        When an image's dose is unknown (its prior dose would be wrong for every later
        image): complete the table first.
    """
    frame = table.frame
    if frame.empty:
        raise InvalidDataError("The dose table is empty: nothing to export.")
    dose = frame["dose_e_A2"].to_numpy(float)
    missing = np.flatnonzero(~np.isfinite(dose))
    if missing.size:
        names = ", ".join(str(frame["image"].iloc[i]) for i in missing[:3])
        raise InvalidDataError(
            f"{missing.size} image(s) have no dose ({names}…): every later image's prior dose "
            "would be wrong. Complete the current calibration or the conditions first."
        )
    prior = np.concatenate([[0.0], np.cumsum(dose)[:-1]])
    return list(frame["image"].astype(str)), prior, dose


def write_dose_text(table, path) -> Path:
    """One line per image in acquisition order: prior dose and dose (e⁻/Å²)."""
    images, prior, dose = dose_columns(table)
    lines = [
        "# napari-emcal dose per image, acquisition order; e-/A^2",
        "# prior_dose dose  (image)",
    ]
    lines += [f"{p:.4f} {d:.4f}  # {name}" for name, p, d in zip(images, prior, dose)]
    atomic_write_text(path, "\n".join(lines) + "\n")
    return Path(path)


_SECTION = re.compile(r"^\[\s*ZValue\s*=\s*(\d+)\s*\]")
_DOSE_KEY = re.compile(r"^\s*(ExposureDose|PriorRecordDose)\s*=")


def write_mdoc_doses(mdoc, table, path) -> tuple[Path, int]:
    """Copy ``mdoc`` to ``path`` with each section's ``ExposureDose`` and
    ``PriorRecordDose`` from the dose table; returns the path and the sections set.

    The table's rows for this file are named ``<stem> [<ZValue>]`` (as
    :func:`~napari_emcal.dose.metadata.rows_from_file` names them); a section without a
    row keeps its lines.
    """
    mdoc = Path(mdoc)
    try:
        text = mdoc.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InvalidDataError(f"cannot read {mdoc}: {exc.strerror}") from exc
    images, prior, dose = dose_columns(table)
    by_name = {name: (p, d) for name, p, d in zip(images, prior, dose)}
    out, current, done = [], None, 0
    for line in text.splitlines():
        match = _SECTION.match(line)
        if match:
            current = by_name.get(f"{mdoc.stem} [{int(match.group(1))}]")
            out.append(line)
            if current is not None:
                out.append(f"ExposureDose = {current[1]:.4f}")
                out.append(f"PriorRecordDose = {current[0]:.4f}")
                done += 1
            continue
        if current is not None and _DOSE_KEY.match(line):
            continue  # replaced above
        out.append(line)
    if done == 0:
        raise InvalidDataError(
            f"no section of {mdoc.name} matches an image of the dose table (rows named "
            f"'{mdoc.stem} [Z]'): add the .mdoc to the table first"
        )
    atomic_write_text(path, "\n".join(out) + "\n")
    return Path(path), done


# -- HyperSpy / pyxem signals, written by RosettaSciIO ----------------------------------
def _axis(name: str, size: int, scale: float, offset: float, units: str, navigate: bool):
    return {
        "name": name,
        "size": int(size),
        "scale": float(scale),
        "offset": float(offset),
        "units": units,
        "navigate": bool(navigate),
        "_type": "UniformDataAxis",
    }


def stem_axes(
    shape,
    *,
    scan_step: float | None = None,
    camera_length: float | None = None,
    detector_pixel_size: float | None = None,
    centre: tuple[float, float] | None = None,
) -> list[dict]:
    """HyperSpy axes of a 4D STEM array of ``shape`` (scan_y, scan_x, det_y, det_x).

    Parameters
    ----------
    scan_step : float, optional
        Distance between scan positions (m); the navigation axes are in nm (in pixels
        without it).
    camera_length, detector_pixel_size : float, optional
        Specimen to detector (m) and one detector pixel (m): the signal axes are in mrad
        (pixels without either).
    centre : (float, float), optional
        Beam centre (cy, cx) in detector pixels, at angle 0 (default: pixel 0 at 0).
    """
    sy, sx, dy, dx = (int(v) for v in shape)
    nav_scale, nav_units = (scan_step * 1e9, "nm") if scan_step else (1.0, "px")
    if camera_length and detector_pixel_size:
        sig_scale, sig_units = detector_pixel_size / camera_length * 1e3, "mrad"
    else:
        sig_scale, sig_units = 1.0, "px"
    cy, cx = centre if centre is not None else (0.0, 0.0)
    return [
        _axis("y", sy, nav_scale, 0.0, nav_units, True),
        _axis("x", sx, nav_scale, 0.0, nav_units, True),
        _axis("ky", dy, sig_scale, -cy * sig_scale, sig_units, False),
        _axis("kx", dx, sig_scale, -cx * sig_scale, sig_units, False),
    ]


def image_axes(shape, scale=(1.0, 1.0), units=("px", "px")) -> list[dict]:
    """HyperSpy axes of a 2D image (y, x), both signal axes."""
    return [
        _axis(name, size, step, 0.0, unit, False)
        for name, size, step, unit in zip(("y", "x"), shape, scale, units)
    ]


def write_hspy(
    path, data, axes: list[dict], *, title: str = "", signal_type: str = "", notes=None
) -> Path:
    """Write ``data`` (NumPy or Dask; Dask is written block by block) with ``axes`` as a
    HyperSpy ``.hspy`` file through RosettaSciIO; ``notes`` (a JSON-able dict) go into its
    original metadata under ``napari_emcal``."""
    import dask.array as da
    from rsciio.hspy import file_writer

    if len(axes) != np.ndim(data):
        raise InvalidDataError(f"{len(axes)} axes for data of {np.ndim(data)} dimensions")
    lazy = isinstance(data, da.Array)
    signal = {
        "data": data if lazy else np.asarray(data),
        "axes": axes,
        "metadata": {
            "General": {"title": title},
            "Signal": {"signal_type": signal_type},
        },
        "original_metadata": {"napari_emcal": notes or {}},
        "learning_results": {},
        "models": {},
        "attributes": {"_lazy": lazy},
        "tmp_parameters": {},
        "package_info": {"name": "napari-emcal", "version": _version()},
    }
    path = Path(path)
    file_writer(str(path), signal, show_progressbar=False)
    return path


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("napari-emcal")
    except PackageNotFoundError:
        return ""


def write_stem_hspy(
    path, data, params=None, metadata=None, *, title: str = "", uncertainty: dict | None = None
) -> Path:
    """A 4D STEM dataset as a pyxem-style electron-diffraction signal: the axes from the
    twin ``params`` (calibrated lengths and beam centre) where given, else from what the
    file's ``metadata`` records; the rotation and flip, when known, in the notes, with the
    calibration's standard errors (``uncertainty``, in the twin's units) beside them."""
    from .overfocus.twin import TwinParams

    known = TwinParams.known_from_metadata(metadata or {})
    if params is not None:
        known.update(params.to_dict())
    centre = (known["cy"], known["cx"]) if "cy" in known and "cx" in known else None
    axes = stem_axes(
        np.shape(data),
        scan_step=known.get("scan_pixel_size"),
        camera_length=known.get("camera_length"),
        detector_pixel_size=known.get("detector_pixel_size"),
        centre=centre,
    )
    notes = {"axes_from": "the calibrated twin" if params is not None else "the file"}
    if params is not None:
        notes.update(
            scan_rotation_deg=float(params.scan_rotation),
            flip_y=bool(params.flip_y),
            overfocus_m=float(params.overfocus),
            convention="a detector vector turns into the scan frame by "
            "rotate_deg(scan_rotation) @ flip_y (LiberTEM's apply_correction)",
        )
        if uncertainty:
            from .overfocus.twin import uncertainty_document

            notes["standard_errors"] = uncertainty_document(uncertainty)
    return write_hspy(
        path, data, axes, title=title, signal_type="electron_diffraction", notes=notes
    )
