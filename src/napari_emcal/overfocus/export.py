"""The overfocus calibration in the forms the next tools read, each with its convention.

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
- :func:`write_stem_hspy`: a 4D STEM dataset as a HyperSpy/pyxem signal written by
  RosettaSciIO (:mod:`napari_emcal.io.writers`), with its axes calibrated from the twin;
  HyperSpy's axes hold no rotation between scan and detector: the twin's
  ``scan_rotation``, ``flip_y`` and the ``descan`` (the beam's walk, which the axes
  cannot hold either) go into the original metadata with their convention.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .._files import atomic_write_text
from ..geometry import wrap_angle
from ..io.writers import stem_axes, write_hspy
from ..units import from_si
from .twin import TwinParams, uncertainty_document

__all__ = [
    "libertem_com",
    "libertem_com_text",
    "py4dstem_calibration",
    "write_libertem_com",
    "write_py4dstem_calibration",
    "write_stem_hspy",
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


def libertem_com_text(params) -> str:
    """:func:`libertem_com` as text to paste into a LiberTEM call."""
    com = libertem_com(params)
    return (
        f"scan_rotation={com['scan_rotation']:.4f}, flip_y={com['flip_y']}, "
        f"cy={com['cy']:.3f}, cx={com['cx']:.3f}"
    )


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
        "R_pixel_size": from_si(float(params.scan_pixel_size), "Å"),
        "R_pixel_units": "A",
    }
    if params.camera_length > 0 and params.detector_pixel_size > 0:
        angle = float(params.detector_pixel_size / params.camera_length)  # rad per pixel
        out["Q_pixel_size"] = from_si(angle, "mrad")
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


def write_stem_hspy(
    path, data, params=None, metadata=None, *, title: str = "", uncertainty: dict | None = None
) -> Path:
    """A 4D STEM dataset as a pyxem-style electron-diffraction signal: the axes from the
    twin ``params`` (calibrated lengths and beam centre) where given, else from what the
    file's ``metadata`` records; the rotation and flip, when known, in the notes, with the
    calibration's standard errors (``uncertainty``, in the twin's units) beside them."""
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
            descan_px_per_px=[list(row) for row in params.descan],
            descan_convention="the beam centre at scan position s = (sy, sx) is "
            "(cy, cx) + descan @ (s - s_c), s_c = ((Ny - 1) / 2, (Nx - 1) / 2); rows (cy, "
            "cx), columns (sy, sx), detector px per scan px; the detector axes' offset is "
            "the centre at s_c",
        )
        if uncertainty:
            notes["standard_errors"] = uncertainty_document(uncertainty)
    return write_hspy(
        path, data, axes, title=title, signal_type="electron_diffraction", notes=notes
    )
