"""The descan the check measured, in the forms LiberTEM and py4DSTEM take it.

The descan model (docs/conventions.md): the beam centre at scan position ``s = (sy, sx)``
is ``c(s) = c0 + D @ (s − s_c)``, ``s_c = ((Ny − 1)/2, (Nx − 1)/2)``, ``D`` in detector
pixels per scan pixel, rows (cy, cx), columns (sy, sx).

- :func:`libertem_regression`: LiberTEM's ``CoMUDF`` subtracts from its field
  ``[1, sy, sx] @ regression`` (``CoMParams(regression=...)``, a (3, 2) array
  ``[[y, x], [dy/dsy, dx/dsy], [dy/dsx, dx/dsx]]``, scan indices from 0). Its field is the
  centre of mass minus ``(cy, cx)``, already turned by ``apply_correction``'s
  ``T = rotate_deg(scan_rotation) @ flip_y`` (this project's ``R(θ)·F``). With ``(cy, cx) = c0``
  the descan's share of the field is ``T @ D @ (s − s_c)``, so ``regression[0] = −T D s_c``
  and ``regression[1:] = (T D)ᵀ``.
- :func:`py4dstem_origin`: py4DSTEM's origin maps ``qx0``, ``qy0``: py4DSTEM's ``qx`` is
  the first detector axis (rows, this project's y) and ``Rx`` the first scan axis, so
  ``qx0[rx, ry] = cy(s)`` and ``qy0[rx, ry] = cx(s)`` with ``s = (rx, ry)``, the arrays its
  ``Calibration.set_origin((qx0, qy0))`` takes.

Pure computation (numpy).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .._files import atomic_write, atomic_write_text
from ..errors import InvalidParameterError
from ..geometry import rotation_flip_matrix

__all__ = [
    "beam_centre_map",
    "compare_descan",
    "libertem_com_descan",
    "libertem_regression",
    "py4dstem_origin",
    "write_libertem_descan",
    "write_descan_exports",
    "write_py4dstem_origin",
]


def _descan(matrix, centre, scan_shape):
    matrix = np.asarray(matrix, float)
    centre = np.asarray(centre, float)
    if matrix.shape != (2, 2) or not np.isfinite(matrix).all():
        raise InvalidParameterError(f"the descan must be a finite 2x2 matrix; got {matrix}")
    if centre.shape != (2,) or not np.isfinite(centre).all():
        raise InvalidParameterError(f"the beam centre must be finite (cy, cx); got {centre}")
    ny, nx = (int(n) for n in scan_shape)
    if ny < 1 or nx < 1:
        raise InvalidParameterError(f"the scan shape must be positive; got {scan_shape}")
    return matrix, centre, np.array([(ny - 1) / 2, (nx - 1) / 2])


def beam_centre_map(matrix, centre, scan_shape) -> np.ndarray:
    """The beam centre ``c(s)`` at every scan position: ``(2, Ny, Nx)``, (cy, cx) in
    detector pixels, of the descan ``matrix`` and the centre ``c0`` at the scan centre."""
    matrix, centre, scan_centre = _descan(matrix, centre, scan_shape)
    ny, nx = (int(n) for n in scan_shape)
    sy, sx = np.mgrid[:ny, :nx].astype(float)
    offset = np.stack([sy - scan_centre[0], sx - scan_centre[1]])
    return centre[:, None, None] + np.einsum("ij,jyx->iyx", matrix, offset)


def libertem_regression(
    matrix, scan_shape, scan_rotation: float = 0.0, flip_y: bool = False
) -> np.ndarray:
    """The (3, 2) ``regression`` of LiberTEM's ``CoMUDF`` that removes the descan from its
    field, for ``cy, cx`` = the beam centre at the scan centre (module docstring)."""
    matrix, _, scan_centre = _descan(matrix, (0.0, 0.0), scan_shape)
    turned = rotation_flip_matrix(scan_rotation, flip_y) @ matrix  # field per scan pixel
    regression = np.empty((3, 2))
    regression[0] = -turned @ scan_centre
    regression[1:] = turned.T
    return regression


def libertem_com_descan(
    matrix,
    centre,
    scan_shape,
    *,
    radius: float | None = None,
    scan_rotation: float = 0.0,
    flip_y: bool = False,
) -> dict:
    """``CoMUDF.with_params`` arguments that follow the beam: ``cy``, ``cx`` (the beam
    centre at the scan centre), ``r`` (the disk ``radius`` · 1.2 plus the farthest the
    beam walks from the centre, so the walking disk stays inside LiberTEM's fixed mask;
    omitted without a radius: the whole frame), ``scan_rotation``, ``flip_y`` and
    ``regression`` (a nested list: ``np.array`` of it is what ``CoMParams`` takes)."""
    matrix, centre, _ = _descan(matrix, centre, scan_shape)
    out = {
        "cy": float(centre[0]),
        "cx": float(centre[1]),
        "scan_rotation": float(scan_rotation),
        "flip_y": bool(flip_y),
        "regression": libertem_regression(matrix, scan_shape, scan_rotation, flip_y).tolist(),
    }
    if radius is not None and radius > 0:
        walk = beam_centre_map(matrix, centre, scan_shape) - centre[:, None, None]
        out["r"] = float(1.5 * radius + np.hypot(*walk).max())
    return out


def write_libertem_descan(path, arguments: dict, standard_errors: dict | None = None) -> Path:
    """:func:`libertem_com_descan`'s arguments as JSON with their convention."""
    document = {
        "format": "LiberTEM CoM parameters with descan regression (napari-emcal)",
        "convention": "CoMUDF.with_params(cy=cy, cx=cx, r=r, scan_rotation=scan_rotation, "
        "flip_y=flip_y, regression=np.array(regression)): LiberTEM subtracts "
        "[1, sy, sx] @ regression (scan indices from 0) from its field, the CoM minus "
        "(cy, cx) turned by rotate_deg(scan_rotation) @ flip_y; rows of regression "
        "[[y, x], [dy/dsy, dx/dsy], [dy/dsx, dx/dsx]] in detector pixels (per scan pixel)",
        **arguments,
    }
    if standard_errors:
        document["standard_errors"] = standard_errors
    atomic_write_text(path, json.dumps(document, indent=2))
    return Path(path)


def py4dstem_origin(matrix, centre, scan_shape) -> tuple[np.ndarray, np.ndarray]:
    """py4DSTEM's origin maps ``(qx0, qy0)``, scan-shaped (module docstring)."""
    cy, cx = beam_centre_map(matrix, centre, scan_shape)
    return cy, cx


def write_py4dstem_origin(
    path, matrix, centre, scan_shape, standard_errors: dict | None = None
) -> Path:
    """The origin maps as ``.npz`` (arrays ``qx0``, ``qy0`` and the plane) or, for any
    other suffix, JSON (nested lists), with the convention and how to apply them."""
    qx0, qy0 = py4dstem_origin(matrix, centre, scan_shape)
    convention = (
        "qx is py4DSTEM's first detector axis (rows), Rx its first scan axis: qx0[rx, ry], "
        "qy0[rx, ry] is the beam centre (row, column) in detector pixels at scan position "
        "(rx, ry) = c0 + descan @ ((rx, ry) - s_c), s_c the scan centre"
    )
    apply = "datacube.calibration.set_origin((qx0, qy0))"
    plane = {
        "origin_at_scan_centre_px": [float(v) for v in centre],
        "descan_px_per_scan_px": np.asarray(matrix, float).tolist(),
        "scan_centre": [(int(n) - 1) / 2 for n in scan_shape],
    }
    path = Path(path)
    if path.suffix.lower() == ".npz":

        def write(target):
            with open(target, "wb") as handle:  # a handle: savez adds no second suffix
                np.savez(
                    handle,
                    qx0=qx0,
                    qy0=qy0,
                    descan=np.asarray(matrix, float),
                    origin_at_scan_centre=np.asarray(centre, float),
                    convention=np.array(convention + "; apply: " + apply),
                )

        return atomic_write(path, write)
    document = {
        "format": "py4DSTEM origin maps of the descan (napari-emcal)",
        "convention": convention,
        "apply": "qx0, qy0 = np.array(doc['qx0']), np.array(doc['qy0']); " + apply,
        **plane,
        "qx0": qx0.tolist(),
        "qy0": qy0.tolist(),
    }
    if standard_errors:
        document["standard_errors"] = standard_errors
    atomic_write_text(path, json.dumps(document))
    return path


def libertem_standard_errors(descan, scan_shape, scan_rotation=0.0, flip_y=False) -> dict:
    """Standard errors of :func:`libertem_com_descan`'s ``cy``, ``cx`` and
    ``regression`` from the fit's (its entries taken as independent), or {} without."""
    if descan.matrix_sigma is None:
        return {}
    turn = rotation_flip_matrix(scan_rotation, flip_y)
    variance = np.asarray(descan.matrix_sigma, float) ** 2
    per_step = (turn**2) @ variance  # var of (T D)_ij
    centre = np.array([(int(n) - 1) / 2 for n in scan_shape])
    regression = np.empty((3, 2))
    regression[0] = np.sqrt(per_step @ centre**2)
    regression[1:] = np.sqrt(per_step).T
    out = {"regression": regression.tolist()}
    if descan.centre_sigma is not None:
        out["cy"], out["cx"] = (float(v) for v in descan.centre_sigma)
    return out


def write_descan_exports(report, *, libertem=None, py4dstem=None, rotation=(0.0, False)):
    """Write the report's descan for LiberTEM (``libertem``, JSON) and py4DSTEM
    (``py4dstem``, .npz or JSON); returns a line per file written.

    Raises
    ------
    InvalidParameterError
        The report has no descan fit.
    """
    descan = report.descan
    if descan is None:
        raise InvalidParameterError("no descan fit to export (no bright-field disk)")
    shape = report.scan_shape
    lines = []
    if libertem:
        radius = report.beam.radius if report.beam is not None else None
        arguments = libertem_com_descan(
            descan.matrix,
            descan.centre,
            shape,
            radius=radius,
            scan_rotation=rotation[0],
            flip_y=rotation[1],
        )
        errors = libertem_standard_errors(descan, shape, *rotation)
        written = write_libertem_descan(libertem, arguments, errors)
        lines.append(f"wrote {written}: LiberTEM CoMUDF arguments with the descan regression")
    if py4dstem:
        errors = {}
        if descan.matrix_sigma is not None:
            errors["descan_px_per_scan_px"] = np.asarray(descan.matrix_sigma).tolist()
        if descan.centre_sigma is not None:
            errors["origin_at_scan_centre_px"] = list(descan.centre_sigma)
        written = write_py4dstem_origin(py4dstem, descan.matrix, descan.centre, shape, errors)
        lines.append(f"wrote {written}: py4DSTEM origin maps qx0, qy0 ({shape[0]} x {shape[1]})")
    return lines


def compare_descan(descan, matrix, sigma=None) -> str:
    """The check's descan fit against another (e.g. the overfocus twin's), entry by entry
    in their combined standard errors where both have them."""
    other = np.asarray(matrix, float)
    difference = np.asarray(descan.matrix, float) - other
    text = (
        f"descan differs by at most {np.abs(difference).max():.4f} px/px (twin "
        f"{np.array2string(other, precision=4, separator=', ')})"
    )
    if descan.matrix_sigma is not None and sigma is not None:
        combined = np.hypot(np.asarray(descan.matrix_sigma, float), np.asarray(sigma, float))
        worst = float((np.abs(difference) / np.maximum(combined, 1e-12)).max())
        verdict = "agree" if worst <= 3 else "DISAGREE"
        text += f": {verdict} ({worst:.1f} combined standard errors at most)"
    else:
        text += " (no standard errors on one side: not judged)"
    return text
