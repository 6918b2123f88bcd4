"""Standard errors of the calibration: a bootstrap over detector regions for the
statistical part, the difference between the refined and the direct estimate (two methods
with different systematics) and a floor for the method's own error."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ...errors import CalibrationFailedError
from ...geometry import wrap_angle
from ..twin import TwinParams
from .direct import DirectFit
from .parallax import decompose
from .regions import MIN_PAIRS

#: Bootstrap resamples of the detector regions for the standard errors, the refits they
#: must give at least, and the margin (in standard errors) the handedness must have to be
#: decided.
BOOTSTRAP_ROUNDS = 200
MIN_BOOTSTRAP_FITS = 20
MIN_FLIP_MARGIN = 3.0
#: A floor for the method's systematic error, added in quadrature to the standard errors:
#: the largest errors left without noise on area-integrating simulations over |k| 0.2-2.5
#: and 64²-256² detectors with detail finer than the scan step (benchmarks/
#: bench_overfocus_shadow.py; docs/science.md).
SYSTEMATIC_ROTATION_DEG = 0.01
SYSTEMATIC_OVERFOCUS = 0.0002


@dataclass(frozen=True)
class Bootstrap:
    """The spread of ``M`` refitted to resamples of the detector regions."""

    scan_rotation_deg: float  # standard error of the rotation
    magnification: float  # standard error of k
    flip_margin: float  # |det M| in standard errors of det M


def bootstrap(fit: DirectFit, n_regions: int, overfocus_sign: float) -> Bootstrap | None:
    """Standard errors of rotation and magnification, and the handedness margin, from
    refitting ``M`` to resamples (with replacement) of the detector regions; None when
    too few resamples give a fit."""
    matrix, inliers = fit.matrix, fit.inliers
    pairs, dd, shifts = fit.pairs[inliers], fit.dd[inliers], fit.shifts[inliers]
    k0, theta0, flip0 = decompose(matrix, overfocus_sign)
    rng = np.random.default_rng(0)  # reproducible
    thetas, ks, dets = [], [], []
    for _ in range(BOOTSTRAP_ROUNDS):
        counts = np.bincount(rng.integers(0, n_regions, n_regions), minlength=n_regions)
        weight = counts[pairs[:, 0]] * counts[pairs[:, 1]]
        if np.count_nonzero(weight) < MIN_PAIRS:
            continue
        root = np.sqrt(weight)[:, None]
        fitted, *_ = np.linalg.lstsq(dd * root, shifts * root, rcond=None)
        k, theta, _ = decompose(fitted.T, overfocus_sign, flip0)
        thetas.append(wrap_angle(theta - theta0))
        ks.append(k)
        dets.append(float(np.linalg.det(fitted.T)))
    if len(ks) < MIN_BOOTSTRAP_FITS:
        return None
    det_sigma = float(np.std(dets))
    return Bootstrap(
        scan_rotation_deg=float(np.std(thetas)),
        magnification=float(np.std(ks)),
        flip_margin=abs(float(np.linalg.det(matrix))) / max(det_sigma, 1e-300),
    )


def uncertainty(
    params: TwinParams,
    direct: TwinParams,
    boot: Bootstrap | None,
    free: frozenset[str],
    disk_radius: float,
) -> tuple[dict, float | None]:
    """Standard errors of the ``free`` parameters at ``params``, and the handedness margin.

    The bootstrap over detector regions measures the statistical error; the difference
    between the refined and the ``direct`` estimate (two methods with different
    systematics) is added in quadrature as an estimate of the systematic one.

    Raises
    ------
    CalibrationFailedError
        The handedness is free and the two fit within noise.
    """
    if boot is None:
        return {}, None
    out = {}
    if "scan_rotation" in free:
        systematic = wrap_angle(params.scan_rotation - direct.scan_rotation)
        out["scan_rotation"] = math.hypot(
            boot.scan_rotation_deg, systematic, SYSTEMATIC_ROTATION_DEG
        )
    if "overfocus" in free:
        s, p, length = params.scan_pixel_size, params.detector_pixel_size, params.camera_length
        k = params.magnification
        # f = k s L / (p - k s): df/dk = s L p / (p - k s)^2
        statistical = abs(s * length * p / (p - k * s) ** 2) * boot.magnification
        out["overfocus"] = math.hypot(
            statistical,
            params.overfocus - direct.overfocus,
            SYSTEMATIC_OVERFOCUS * params.overfocus,
        )
    for name in ("cy", "cx"):
        if name in free:
            # the centroid of a thresholded disk: about half a pixel over its perimeter
            out[name] = 0.5 / math.sqrt(2 * math.pi * max(disk_radius, 1.0))
    margin = boot.flip_margin if "flip_y" in free else None
    if margin is not None and margin < MIN_FLIP_MARGIN:
        raise CalibrationFailedError(
            f"The handedness cannot be told: the two flips fit within noise (margin "
            f"{margin:.1f} standard errors < {MIN_FLIP_MARGIN:g}); fix flip_y from another "
            "calibration and calibrate the rest."
        )
    return out, margin
