"""The digital twin of an overfocused 4D STEM experiment.

A linear model of the instrument maps a detector pixel ``d = (dy, dx)`` recorded at scan
position ``s = (sy, sx)`` to the specimen point it sees, in scan-pixel units::

    t = s + k · R(θ) · F · (d − c(s))
    k = detector_pixel_size · overfocus / ((overfocus + camera_length) · scan_pixel_size)
    c(s) = (cy, cx) + D · (s − s_c),   s_c = ((Ny − 1) / 2, (Nx − 1) / 2)

with ``D`` the descan matrix (detector px per scan px, rows (cy, cx), columns (sy, sx);
zero when the descan undoes the scan exactly, so the beam stays at ``(cy, cx)``),
``R(θ) = [[cos θ, sin θ], [−sin θ, cos θ]]`` acting on (y, x) column vectors and
``F = diag(−1, 1)`` when ``flip_y``. ``R(θ)·F`` is the matrix of LiberTEM's
``libertem.udf.com.apply_correction(y, x, scan_rotation=θ, flip_y=...)``, so a calibrated
``scan_rotation``/``flip_y`` can be given to LiberTEM's centre-of-mass analysis unchanged.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._checks import plausible, rotation_deg
from ..engine.descan import check_descan, descan_shifts, is_zero
from ..errors import InvalidParameterError
from ..geometry import rotation_flip_matrix
from ..units import dimension, from_si, to_si

__all__ = ["TwinParams", "load_uncertainty", "rotation_flip_matrix", "uncertainty_document"]

#: The unit each field is stored in (the API's SI units; angles in degrees).
PARAM_UNITS: dict[str, str] = {
    "overfocus": "m",
    "scan_pixel_size": "m",
    "camera_length": "m",
    "detector_pixel_size": "m",
    "cy": "px",
    "cx": "px",
    "scan_rotation": "deg",
    "flip_y": "",
    "semiconv": "rad",
    "descan": "px/px",
}

#: The zero descan: the beam stays at ``(cy, cx)`` in every frame.
NO_DESCAN = ((0.0, 0.0), (0.0, 0.0))

_FILE_FORMAT = "napari-emcal twin parameters"
#: Larger shadow magnifications (scan px per detector px) cannot be right.
MAX_MAGNIFICATION = 1e3
_FILE_VERSION = 1


@dataclass(frozen=True)
class TwinParams:
    """Parameters of the overfocus digital twin (SI units, angles in degrees).

    Parameters
    ----------
    overfocus : float
        Distance of the probe crossover above the specimen, in m. Negative values are an
        underfocus (crossover below the specimen).
    scan_pixel_size : float
        Scan step at the specimen, in m.
    camera_length : float
        Distance from the specimen to the detector, in m.
    detector_pixel_size : float
        Physical size of a detector pixel, in m.
    cy, cx : float
        Detector pixel of the beam centre (row, column).
    scan_rotation : float
        Rotation between the scan and detector coordinate systems, in degrees.
    flip_y : bool
        Whether the detector's y axis is flipped against the scan's.
    semiconv : float or None
        Convergence semi-angle in rad. When given, only detector pixels inside the
        bright-field disk (radius ``semiconv · |overfocus + camera_length| /
        detector_pixel_size`` pixels around ``(cy, cx)``) contribute.
    descan : 2x2 array_like
        The beam's walk on the detector per scan step, detector px per scan px, rows
        (cy, cx), columns (sy, sx): the beam centre at scan position ``s`` is
        ``(cy, cx) + descan @ (s − s_c)``, so ``(cy, cx)`` is the centre at the scan
        centre ``s_c``. Stored as a tuple of tuples of floats; default zero.

    Raises
    ------
    InvalidParameterError
        On non-finite values, zero or negative pixel sizes or camera length,
        ``overfocus == 0`` or ``overfocus == -camera_length``, a non-positive
        ``semiconv``, or a length outside its plausible range (``_checks.PLAUSIBLE``: a
        wrong unit), or a descan that is not a finite 2x2 matrix with entries of at most
        1 px/px. ``scan_rotation`` is wrapped into (-180°, 180°].
    """

    overfocus: float
    scan_pixel_size: float
    camera_length: float
    detector_pixel_size: float
    cy: float
    cx: float
    scan_rotation: float = 0.0
    flip_y: bool = False
    semiconv: float | None = None
    descan: tuple[tuple[float, float], tuple[float, float]] = NO_DESCAN

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            name = field.name
            value = getattr(self, name)
            if name == "descan":
                object.__setattr__(self, name, check_descan(value))
                continue
            if name == "flip_y":
                if not isinstance(value, (bool, np.bool_)):
                    raise InvalidParameterError(f"flip_y must be True or False, got {value!r}.")
                object.__setattr__(self, name, bool(value))
                continue
            if name == "semiconv" and value is None:
                continue
            if isinstance(value, (bool, np.bool_)):
                raise InvalidParameterError(f"{name} must be a number, not {value!r}.")
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise InvalidParameterError(f"{name} must be a number, got {value!r}.") from None
            if not math.isfinite(value):
                raise InvalidParameterError(f"{name} must be finite, got {value}.")
            object.__setattr__(self, name, value)
        for name in ("scan_pixel_size", "camera_length", "detector_pixel_size"):
            if getattr(self, name) <= 0:
                raise InvalidParameterError(
                    f"{name} must be positive (in metres), got {getattr(self, name)}."
                )
        if self.overfocus == 0:
            raise InvalidParameterError(
                "overfocus must not be 0: at focus the shadow image has no magnification "
                "to calibrate. Use a positive overfocus or a negative underfocus (in m)."
            )
        for name, largest in (
            ("scan_pixel_size", 1e-3),
            ("camera_length", 100.0),
            ("detector_pixel_size", 1e-2),
        ):
            if getattr(self, name) > largest:
                raise InvalidParameterError(
                    f"{name} = {getattr(self, name):g} m is beyond any microscope (at most "
                    f"{largest:g} m): is the unit right?"
                )
        if abs(self.overfocus) > 1.0:
            raise InvalidParameterError(
                f"overfocus = {self.overfocus:g} m is beyond any microscope (at most 1 m in "
                "magnitude): is the unit right?"
            )
        if abs(self.overfocus + self.camera_length) < 1e-6 * self.camera_length:
            raise InvalidParameterError(
                "overfocus must not equal -camera_length (nor come near it): the crossover "
                "would sit on the detector and the magnification is undefined."
            )
        if abs(self.magnification) > MAX_MAGNIFICATION:
            raise InvalidParameterError(
                f"these lengths give a shadow magnification of {self.magnification:.3g} scan "
                f"pixels per detector pixel (at most {MAX_MAGNIFICATION:g} can be right): "
                "check the overfocus, camera length and pixel sizes and their units"
            )
        for name in ("overfocus", "scan_pixel_size", "camera_length", "detector_pixel_size"):
            plausible(name, getattr(self, name), label=f"{name} (m)")
        object.__setattr__(
            self, "scan_rotation", rotation_deg(self.scan_rotation, label="scan_rotation")
        )
        if self.semiconv is not None and not 0 < self.semiconv < math.pi / 2:
            raise InvalidParameterError(
                f"semiconv must be positive (in rad, below π/2) or None, got {self.semiconv}."
            )

    # -- the mapping ------------------------------------------------------------------
    @property
    def magnification(self) -> float:
        """``k``: scan pixels at the specimen per detector pixel (signed)."""
        return (
            self.detector_pixel_size
            * self.overfocus
            / ((self.overfocus + self.camera_length) * self.scan_pixel_size)
        )

    @property
    def matrix(self) -> np.ndarray:
        """The 2x2 matrix ``k · R(θ) · F`` (scan pixels per detector pixel)."""
        return self.magnification * rotation_flip_matrix(self.scan_rotation, self.flip_y)

    @property
    def centre(self) -> np.ndarray:
        """The beam centre ``(cy, cx)`` as an array."""
        return np.array([self.cy, self.cx])

    @property
    def descan_matrix(self) -> np.ndarray:
        """The descan ``D`` as a 2x2 array (detector px per scan px)."""
        return np.array(self.descan, dtype=float)

    @property
    def has_descan(self) -> bool:
        """Whether the beam walks on the detector (a non-zero descan)."""
        return not is_zero(self.descan)

    def centre_at(self, scan_yx, scan_shape) -> np.ndarray:
        """The beam centre ``c(s) = (cy, cx) + D (s − s_c)`` at scan position(s) ``s``.

        Parameters
        ----------
        scan_yx : array_like, shape (..., 2)
            Scan positions, scan pixels.
        scan_shape : (int, int)
            The scan's shape (it sets ``s_c``).

        Returns
        -------
        ndarray, shape (..., 2)
            Detector pixels (row, column).
        """
        s = np.asarray(scan_yx, dtype=float)
        shifts = descan_shifts(self.descan, s[..., 0], s[..., 1], scan_shape)
        return self.centre + shifts.reshape(s.shape)

    def _centres(self, scan_yx, scan_shape) -> np.ndarray:
        if not self.has_descan:
            return self.centre
        if scan_shape is None:
            raise InvalidParameterError(
                "this twin has a descan: the beam centre depends on the scan position "
                "relative to the scan centre, so give scan_shape=(Ny, Nx)."
            )
        return self.centre_at(scan_yx, scan_shape)

    @property
    def disk_radius(self) -> float | None:
        """Radius of the bright-field disk on the detector in pixels, or None."""
        if self.semiconv is None:
            return None
        return self.semiconv * abs(self.overfocus + self.camera_length) / self.detector_pixel_size

    def detector_to_specimen(self, detector_yx, scan_yx, scan_shape=None) -> np.ndarray:
        """Specimen position ``t`` (scan pixels) seen by detector pixel(s) at scan position(s).

        Parameters
        ----------
        detector_yx : array_like, shape (..., 2)
            Detector pixel coordinates (row, column).
        scan_yx : array_like, shape (..., 2)
            Scan positions in scan pixels; broadcast against ``detector_yx``.
        scan_shape : (int, int), optional
            The scan's shape; needed (for the beam centre ``c(s)``) when the twin has a
            descan.

        Raises
        ------
        InvalidParameterError
            A descan without ``scan_shape``.
        """
        d = np.asarray(detector_yx, dtype=float)
        s = np.asarray(scan_yx, dtype=float)
        return s + (d - self._centres(s, scan_shape)) @ self.matrix.T

    def specimen_to_detector(self, specimen_yx, scan_yx, scan_shape=None) -> np.ndarray:
        """Detector pixel that sees specimen point(s) ``t`` at scan position(s) ``s``.

        The inverse of :meth:`detector_to_specimen` (``scan_shape`` as there).
        """
        t = np.asarray(specimen_yx, dtype=float)
        s = np.asarray(scan_yx, dtype=float)
        return self._centres(s, scan_shape) + (t - s) @ np.linalg.inv(self.matrix).T

    def bright_field_mask(
        self, detector_shape: tuple[int, int], scan_yx=None, scan_shape=None
    ) -> np.ndarray | None:
        """Boolean mask of the detector pixels inside the bright-field disk, or None.

        The disk is centred on ``(cy, cx)`` (the beam at the scan centre, or on frames with
        the descan compensated), or on ``c(s)`` when a scan position ``scan_yx`` and the
        ``scan_shape`` are given.
        """
        radius = self.disk_radius
        if radius is None:
            return None
        cy, cx = self.centre if scan_yx is None else self._centres(scan_yx, scan_shape)
        yy, xx = np.ogrid[: detector_shape[0], : detector_shape[1]]
        return (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2

    # -- convenience --------------------------------------------------------------
    def replace(self, **changes: Any) -> TwinParams:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain values keyed by field name (SI units, degrees)."""
        return dataclasses.asdict(self)

    def to_json_dict(self, uncertainty: dict | None = None) -> dict[str, Any]:
        """The JSON document :meth:`save` writes: every value with its unit, and the
        standard errors ``uncertainty`` (by parameter name, in its units) when given."""
        document = {
            "format": _FILE_FORMAT,
            "version": _FILE_VERSION,
            "parameters": {
                name: {"value": value, "unit": PARAM_UNITS[name]}
                for name, value in self.to_dict().items()
            },
            "derived": {
                "magnification_scan_px_per_detector_px": self.magnification,
                "descan_convention": "beam centre (cy, cx) + descan @ (s - s_c), "
                "s_c = ((Ny - 1) / 2, (Nx - 1) / 2); rows (cy, cx), columns (sy, sx)",
                "bright_field_disk_radius_px": self.disk_radius,
            },
        }
        if uncertainty:
            document["uncertainty"] = uncertainty_document(uncertainty)
        return document

    @classmethod
    def from_json_dict(cls, doc: dict[str, Any]) -> TwinParams:
        """Build parameters from :meth:`to_json_dict`'s document; units are converted."""
        if not isinstance(doc, dict) or not isinstance(doc.get("parameters"), dict):
            raise InvalidParameterError(
                "Not a twin-parameter document: expected a JSON object with 'parameters' "
                "holding an object of name: {value, unit}."
            )
        values: dict[str, Any] = {}
        for name, entry in doc["parameters"].items():
            if name not in PARAM_UNITS:
                raise InvalidParameterError(
                    f"Unknown twin parameter {name!r}; known: {', '.join(PARAM_UNITS)}."
                )
            if isinstance(entry, dict):
                value, unit = entry.get("value"), entry.get("unit", PARAM_UNITS[name])
            else:
                value, unit = entry, PARAM_UNITS[name]
            if not isinstance(unit, str):
                raise InvalidParameterError(
                    f"{name}: the unit must be text such as {PARAM_UNITS[name]!r}; got {unit!r}"
                )
            if name == "descan":
                values[name] = _descan_value(value, unit)
                continue
            if name != "flip_y" and value is not None and not _is_number(value):
                raise InvalidParameterError(f"{name} must be a number; got {value!r}")
            values[name] = _convert_to_field_unit(name, value, unit)
        missing = [
            f.name
            for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.name not in values
        ]
        if missing:
            raise InvalidParameterError(f"Missing twin parameters: {', '.join(missing)}.")
        return cls(**values)

    @classmethod
    def known_from_metadata(cls, metadata: dict[str, Any]) -> dict[str, Any]:
        """The twin parameters a file's metadata gives (SI), by name; those it does not
        give are absent (never a default).

        ``metadata`` is what :func:`napari_emcal.io.readers.open_4d` returns: a
        ``"nominal"`` twin (the simulated samples) gives every parameter; otherwise the
        scan step, detector pixel size and camera length are taken where recorded.
        """
        if metadata.get("nominal"):
            return cls.from_json_dict(metadata["nominal"]).to_dict()
        known: dict[str, Any] = {}
        if metadata.get("scan_step"):
            known["scan_pixel_size"] = float(metadata["scan_step"][1])
        if metadata.get("detector_pixel_size"):
            known["detector_pixel_size"] = float(metadata["detector_pixel_size"][1])
        if metadata.get("camera_length"):
            known["camera_length"] = float(metadata["camera_length"])
        return known

    @classmethod
    def from_metadata(
        cls, metadata: dict[str, Any], overrides: dict[str, Any] | None = None
    ) -> TwinParams:
        """Parameters from what a file says, ``overrides`` filling or replacing fields.

        Raises
        ------
        InvalidParameterError
            A required parameter is neither in the metadata nor in ``overrides`` (named).
        """
        values = {**cls.known_from_metadata(metadata), **(overrides or {})}
        required = [f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING]
        missing = [name for name in required if name not in values]
        if missing:
            raise InvalidParameterError(
                f"The file does not give {', '.join(missing)}; pass them with --params "
                "params.json (write one with TwinParams(...).save(path) or the widget's "
                "'Save parameters…')."
            )
        return cls(**values)

    def save(self, path: str | os.PathLike, uncertainty: dict | None = None) -> None:
        """Write the parameters with their units as JSON; ``uncertainty`` (standard errors
        by parameter name, in the parameters' units) is written beside them."""
        document = self.to_json_dict(uncertainty)
        from .._files import atomic_write_text

        atomic_write_text(path, json.dumps(document, indent=2) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> TwinParams:
        """Read parameters written by :meth:`save` (or by hand, with any known units)."""
        from .._files import read_json
        from ..errors import InvalidDataError

        try:
            doc = read_json(path, what="parameters file")
        except InvalidDataError as exc:
            raise InvalidParameterError(str(exc)) from None
        return cls.from_json_dict(doc)


def uncertainty_document(uncertainty: dict) -> dict:
    """Standard errors by parameter name as JSON: ``{name: {"value", "unit"}}`` in the
    parameters' units (what :meth:`TwinParams.save` and the ``.hspy`` export write)."""
    out = {}
    for name, value in uncertainty.items():
        if value is None or name not in PARAM_UNITS:
            continue
        if name == "descan":
            value = np.asarray(value, dtype=float).reshape(2, 2).tolist()
        else:
            value = float(value)
        out[name] = {"value": value, "unit": PARAM_UNITS[name]}
    return out


def load_uncertainty(path: str | os.PathLike) -> dict[str, float]:
    """The standard errors :meth:`TwinParams.save` wrote beside the parameters, by name in
    the parameters' units (empty when the file has none)."""
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    out = {}
    for name, entry in (doc.get("uncertainty") or {}).items():
        if name == "descan" and isinstance(entry, dict):
            try:
                out[name] = np.asarray(
                    _descan_value(entry.get("value"), entry.get("unit", "px/px"), bound=False)
                )
            except InvalidParameterError:
                pass
            continue
        if name in PARAM_UNITS and isinstance(entry, dict) and _is_number(entry.get("value")):
            unit = entry.get("unit", PARAM_UNITS[name])
            out[name] = float(_convert_to_field_unit(name, entry["value"], unit))
    return out


def _descan_value(value, unit, bound: bool = True):
    """A descan from JSON: a 2x2 list in px/px (the only unit it is written in)."""
    if unit not in ("px/px", "pixel/pixel", "px per px"):
        raise InvalidParameterError(
            f"descan must be given in 'px/px' (detector pixels per scan pixel), got {unit!r}."
        )
    if bound:
        return check_descan(value)
    matrix = np.asarray(value, dtype=float) if isinstance(value, list) else None
    if matrix is None or matrix.shape != (2, 2) or not np.isfinite(matrix).all():
        raise InvalidParameterError("descan uncertainty must be a finite 2x2 list")
    return matrix


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _convert_to_field_unit(name: str, value: Any, unit: str) -> Any:
    if value is None or name == "flip_y":
        return value
    target = PARAM_UNITS[name]
    if unit == target:
        return value
    if dimension(unit) != dimension(target):
        raise InvalidParameterError(
            f"{name} was given in {unit!r}, which is not a {dimension(target)}."
        )
    return from_si(to_si(float(value), unit), target)
