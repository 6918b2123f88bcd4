"""Plane geometry the tools share: angles, the twin's rotation-and-flip matrix, and
similarity transforms (scale and rotation) with their weighted least-squares fit.

Conventions (docs/conventions.md): vectors are (y, x) columns; ``R(θ) = [[cos θ, sin θ],
[−sin θ, cos θ]]`` turns a direction from +x towards +y, clockwise as napari shows an image;
angles are in degrees.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["fit_similarity", "rotation_flip_matrix", "similarity", "solve_similarity", "wrap_angle"]


def wrap_angle(angle: float) -> float:
    """``angle`` in degrees, wrapped into [-180, 180)."""
    return (angle + 180.0) % 360.0 - 180.0


def rotation_flip_matrix(scan_rotation: float, flip_y: bool) -> np.ndarray:
    """The 2x2 matrix ``R(θ)·F`` acting on (y, x) column vectors.

    Parameters
    ----------
    scan_rotation : float
        θ in degrees (finite, at most ten turns: else InvalidParameterError).
    flip_y : bool
        Whether ``F = diag(−1, 1)`` (else the identity).
    """
    from ._checks import rotation_deg

    theta = math.radians(rotation_deg(scan_rotation, label="scan_rotation"))
    c, s = math.cos(theta), math.sin(theta)
    rot = np.array([[c, s], [-s, c]])
    if flip_y:
        rot = rot @ np.diag([-1.0, 1.0])
    return rot


def similarity(scale: float, rotation_deg: float) -> np.ndarray:
    """The 2x2 matrix ``scale · R(rotation)`` acting on (y, x) column vectors
    (the same ``R`` as the twin's scan rotation)."""
    return scale * rotation_flip_matrix(rotation_deg, False)


def solve_similarity(p: np.ndarray, q: np.ndarray, w: np.ndarray):
    """Weighted least squares ``q = [[a, b], [-b, a]] p + t`` for points ``(n, 2)``.

    Returns the matrix and the offset ``t``.
    """
    pc = np.average(p, axis=0, weights=w)
    qc = np.average(q, axis=0, weights=w)
    py, px = (p - pc).T
    qy, qx = (q - qc).T
    # qy = a·py + b·px ; qx = -b·py + a·px
    norm = np.sum(w * (py**2 + px**2))
    a = np.sum(w * (qy * py + qx * px)) / norm
    b = np.sum(w * (qy * px - qx * py)) / norm
    matrix = np.array([[a, b], [-b, a]])
    return matrix, qc - matrix @ pc


def fit_similarity(p: np.ndarray, q: np.ndarray, weight: np.ndarray):
    """:func:`solve_similarity` with weights ``weight²``, dropping outliers (beyond four
    robust standard deviations, at least 0.25) in up to four rounds.

    Returns the matrix, offset, RMS residual of the kept points and their number.
    """
    keep = np.ones(len(p), bool)
    w = np.clip(weight, 1e-3, None) ** 2
    for _ in range(4):
        matrix, offset = solve_similarity(p[keep], q[keep], w[keep])
        residual = np.hypot(*(q - (p @ matrix.T + offset)).T)
        spread = 1.4826 * np.median(residual[keep])
        new_keep = residual <= max(4.0 * spread, 0.25)
        if new_keep.sum() < 3 or (new_keep == keep).all():
            break
        keep = new_keep
    rms = float(np.sqrt(np.average(residual[keep] ** 2, weights=w[keep])))
    return matrix, offset, rms, int(keep.sum())
