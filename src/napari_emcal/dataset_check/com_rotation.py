"""Scan rotation and handedness from the centre-of-mass field: the second opinion.

The centre of mass of each diffraction pattern measures the specimen's (projected) electric
field, which is the gradient of a potential: turned into scan directions by the right
``R(θ)·F`` (docs/conventions.md), it has no curl. The curl of the turned field is linear in
``cos θ`` and ``sin θ``, so its energy ``Σ curl²`` is a quadratic form on the unit circle:
its minimum is an eigenvector, found exactly (no 1° grid), for each handedness. The
handedness whose minimum is clearly lower wins; ``θ`` and ``θ + 180°`` are equally curl-free
(the field's sign is a convention), so the angle is given modulo 180°.

The standard error comes from a block bootstrap over tiles of the scan (neighbouring scan
positions share noise and specimen), and a linear ramp (descan) is removed from each
component first, since a linear field's curl is constant and would bias the angle.

Pure NumPy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import CalibrationFailedError, InvalidDataError
from ..geometry import rotation_flip_matrix, wrap_angle

__all__ = ["ComRotation", "com_rotation", "compare_rotations"]

#: The other handedness must leave at least this many times more curl to be ruled out.
MIN_FLIP_RATIO = 1.5
BOOTSTRAP_ROUNDS = 200
TILE = 4


@dataclass(frozen=True)
class ComRotation:
    """The scan rotation and flip that make the centre-of-mass field curl-free.

    Attributes
    ----------
    scan_rotation : float
        Degrees, in [-90, 90): the field's sign is not known, so θ + 180° fits as well.
    scan_rotation_sigma : float
        Standard error (degrees).
    flip_y : bool
    flip_ratio : float
        Curl left by the other handedness / curl left by this one (> 1).
    flip_certain : bool
        Whether ``flip_ratio`` rules the other handedness out.
    """

    scan_rotation: float
    scan_rotation_sigma: float
    flip_y: bool
    flip_ratio: float
    flip_certain: bool

    def summary(self) -> str:
        flip = (
            f"flip {self.flip_y} ({self.flip_ratio:.1f}x less curl than the other handedness)"
            if self.flip_certain
            else f"handedness undetermined (the two differ by only {self.flip_ratio:.2f}x)"
        )
        return (
            f"CoM curl-free rotation {self.scan_rotation:.2f} ± {self.scan_rotation_sigma:.2f}° "
            f"(or +180°), {flip}"
        )


def _detrended(field: np.ndarray) -> np.ndarray:
    """The field minus its best plane (a linear descan's field has a constant curl)."""
    sy, sx = field.shape
    yy, xx = np.mgrid[:sy, :sx].astype(float)
    design = np.column_stack([np.ones(field.size), yy.ravel(), xx.ravel()])
    coefficients, *_ = np.linalg.lstsq(design, field.ravel(), rcond=None)
    return field - (design @ coefficients).reshape(field.shape)


def _curl(field_y: np.ndarray, field_x: np.ndarray) -> np.ndarray:
    """∂E_x/∂y − ∂E_y/∂x by central differences (interior points)."""
    dex_dy = 0.5 * (field_x[2:, 1:-1] - field_x[:-2, 1:-1])
    dey_dx = 0.5 * (field_y[1:-1, 2:] - field_y[1:-1, :-2])
    return dex_dy - dey_dx


def _forms(dy: np.ndarray, dx: np.ndarray, flip: bool) -> tuple[np.ndarray, np.ndarray]:
    """The curls of the two fields whose mix cos θ·A + sin θ·B is R(θ)·F·d."""
    f = rotation_flip_matrix(0.0, flip)
    fy, fx = f[0, 0] * dy + f[0, 1] * dx, f[1, 0] * dy + f[1, 1] * dx
    # R(θ) = cos θ·I + sin θ·J with J = [[0, 1], [-1, 0]] on (y, x)
    return _curl(fy, fx), _curl(fx, -fy)


def _minimum(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(θ in degrees, curl energy) minimising Σ (cos θ·a + sin θ·b)²."""
    form = np.array([[np.sum(a * a), np.sum(a * b)], [np.sum(a * b), np.sum(b * b)]])
    values, vectors = np.linalg.eigh(form)
    c, s = vectors[:, 0]
    return math.degrees(math.atan2(s, c)), float(values[0])


def com_rotation(com_y, com_x, *, seed: int = 0) -> ComRotation:
    """Scan rotation and flip from a centre-of-mass field in *detector* directions.

    Parameters
    ----------
    com_y, com_x : 2D arrays (scan_y, scan_x)
        Centre of mass relative to the beam centre, detector pixels, not yet turned
        (``scan_rotation=0``, ``flip_y=False`` in the dataset pass).

    Raises
    ------
    InvalidDataError
        Not two 2D arrays of the same shape of at least 8 x 8 positions.
    CalibrationFailedError
        The field has no curl-free direction that stands out (a uniform or pure-noise
        field).
    """
    dy, dx = np.asarray(com_y, float), np.asarray(com_x, float)
    if dy.ndim != 2 or dy.shape != dx.shape or min(dy.shape) < 8:
        raise InvalidDataError("the CoM field must be two 2D maps of at least 8 x 8 positions")
    valid = np.isfinite(dy) & np.isfinite(dx)
    if valid.mean() < 0.9:
        raise CalibrationFailedError("the CoM field is missing in more than 10 % of frames")
    dy = _detrended(np.where(valid, dy, np.nanmean(dy)))
    dx = _detrended(np.where(valid, dx, np.nanmean(dx)))
    if not (np.std(dy) > 0 or np.std(dx) > 0):
        raise CalibrationFailedError("the CoM field is uniform: no rotation can be read from it")
    results = {}
    for flip in (False, True):
        a, b = _forms(dy, dx, flip)
        theta, energy = _minimum(a, b)
        total = float(np.sum(a * a) + np.sum(b * b)) / 2  # the mean over all angles
        results[flip] = (theta, energy, total, a, b)
    flip = min(results, key=lambda f: results[f][1])
    theta, energy, total, a, b = results[flip]
    other = results[not flip][1]
    ratio = other / max(energy, 1e-300)
    if energy > 0.5 * total:
        raise CalibrationFailedError(
            "no direction makes the CoM field curl-free (noise, or no specimen signal)"
        )
    sigma = _bootstrap_sigma(a, b, theta, seed)
    return ComRotation(
        scan_rotation=float(wrap_angle(2 * theta) / 2),  # modulo 180°, in [-90, 90)
        scan_rotation_sigma=sigma,
        flip_y=bool(flip),
        flip_ratio=float(ratio),
        flip_certain=bool(ratio >= MIN_FLIP_RATIO),
    )


def _bootstrap_sigma(a: np.ndarray, b: np.ndarray, theta: float, seed: int) -> float:
    """Standard error of θ from resampling tiles of the scan (with replacement)."""
    ty, tx = max(1, a.shape[0] // TILE), max(1, a.shape[1] // TILE)
    sums = np.zeros((ty * tx, 3))
    for i in range(ty):
        for j in range(tx):
            ta = a[i * TILE : (i + 1) * TILE, j * TILE : (j + 1) * TILE]
            tb = b[i * TILE : (i + 1) * TILE, j * TILE : (j + 1) * TILE]
            sums[i * tx + j] = (np.sum(ta * ta), np.sum(ta * tb), np.sum(tb * tb))
    rng = np.random.default_rng(seed)
    angles = []
    for _ in range(BOOTSTRAP_ROUNDS):
        s_aa, s_ab, s_bb = sums[rng.integers(0, len(sums), len(sums))].sum(axis=0)
        values, vectors = np.linalg.eigh(np.array([[s_aa, s_ab], [s_ab, s_bb]]))
        c, s = vectors[:, 0]
        angles.append(wrap_angle(2 * (math.degrees(math.atan2(s, c)) - theta)) / 2)
    return float(np.std(angles))


def compare_rotations(
    com: ComRotation, scan_rotation: float, flip_y: bool, tolerance_deg: float = 0.3
) -> str:
    """A sentence comparing the CoM rotation with another calibration (e.g. overfocus)."""
    if com.flip_certain and com.flip_y != flip_y:
        return "the two calibrations disagree on the handedness (flip_y): check both"
    difference = wrap_angle(scan_rotation - com.scan_rotation)
    if abs(difference) <= max(tolerance_deg, 3 * com.scan_rotation_sigma):
        return f"agree within {abs(difference):.2f}°"
    if abs(abs(difference) - 180) <= max(tolerance_deg, 3 * com.scan_rotation_sigma):
        return "agree up to 180°: the CoM field's sign convention decides (check it)"
    return f"disagree by {difference:.2f}°: check both calibrations"
