"""Camera length, centre and elliptical distortion from a single crystal's spot pattern
along a known zone axis of a cubic standard.

The allowed reflections of the zone (from the structure factor, :mod:`.standards`) are
points ``t = tan(2θ) ĝ`` in the zone's plane; on the detector they appear at
``p = c + B t`` with ``B = (L / p) D R``: a rotation R (and possibly a mirror), the
area-preserving elliptical distortion D and the camera length in pixels. The spots are
found as local maxima, indexed by the map that the two shortest spot vectors give for each
choice of two short reflections, and ``c`` and ``B`` are fitted to every indexed spot by
linear least squares; ``B Bᵀ = (L/p)² D²`` gives the camera length, the axis ratio and
the major axis's angle (same conventions as :mod:`.calibrate`).

Pure NumPy/SciPy.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from scipy import ndimage

from ..errors import CalibrationFailedError, InvalidParameterError
from .calibrate import CAMERA_LENGTH_FLOOR, DiffractionCalibration, RingFit
from .calibrate.centre import (
    _check_image,
    _inner_radius,
    _point_symmetry_centre,
    _saturation_mask,
)
from .standards import ZONES, Standard, electron_wavelength, get_standard, zone_reflections

__all__ = ["MAX_AXIS_RATIO", "ZONES", "calibrate_spots", "zone_reflections"]

#: Distortions beyond this axis ratio are taken for a wrong indexing (a sheared basis of the
#: same lattice), never for the detector's ellipticity (a few percent).
MAX_AXIS_RATIO = 1.15


def _find_spots(image, good, centre, r_min, max_spots=300):
    """Spot positions (y, x) sub-pixel, strongest first."""
    smooth = ndimage.gaussian_filter(np.where(good, image, 0.0), 1.0)
    local = ndimage.median_filter(smooth, size=15)
    excess = np.where(good, smooth - local, 0.0)
    spread = 1.4826 * np.median(np.abs(excess[good] - np.median(excess[good]))) + 1e-12
    peaks = (ndimage.maximum_filter(excess, size=7) == excess) & (excess > 10 * spread)
    yy, xx = np.nonzero(peaks)
    r = np.hypot(yy - centre[0], xx - centre[1])
    keep = r > r_min
    yy, xx = yy[keep], xx[keep]
    order = np.argsort(-excess[yy, xx])[:max_spots]
    spots = []
    signal = np.where(good, image - ndimage.median_filter(image, size=15), 0.0)
    ny, nx = image.shape
    for y, x in zip(yy[order], xx[order]):
        cy, cx = float(y), float(x)
        # centroid in a window re-centred on itself: an integer window would pull the
        # position towards the brightest pixel
        for _ in range(4):
            y0, x0 = int(round(cy)) - 4, int(round(cx)) - 4
            if y0 < 0 or x0 < 0 or y0 + 9 > ny or x0 + 9 > nx:
                break
            w = np.clip(signal[y0 : y0 + 9, x0 : x0 + 9], 0, None)
            if w.sum() <= 0:
                break
            gy, gx = np.mgrid[y0 : y0 + 9, x0 : x0 + 9]
            cy, cx = (gy * w).sum() / w.sum(), (gx * w).sum() / w.sum()
        else:
            spots.append((cy, cx))
    return np.array(spots, float).reshape(-1, 2)


def calibrate_spots(
    image,
    *,
    standard: str | Standard = "Au",
    zone: str = "001",
    beam_energy: float,
    detector_pixel_size: float,
    saturation: float | None = None,
    sources: dict[str, str] | None = None,
) -> DiffractionCalibration:
    """Calibrate from a single crystal's spot pattern along ``zone`` ("001" or "011").

    Returns the same :class:`~.calibrate.DiffractionCalibration` as the rings do (its
    ``rings`` are the indexed reflection families, their radius the undistorted one, their
    residual the families' rms spot residual in px; no profile).

    Raises
    ------
    CalibrationFailedError
        Too few spots, or spots that do not index as the zone of the standard.
    """
    std = get_standard(standard)
    wavelength = electron_wavelength(beam_energy)
    pixel = float(detector_pixel_size)
    if not (math.isfinite(pixel) and 1e-7 <= pixel <= 1e-3):
        raise InvalidParameterError(f"detector pixel size {detector_pixel_size} m is implausible")
    image = _check_image(image)
    valid = np.isfinite(image)
    image = np.where(valid, image, 0.0)
    saturated = _saturation_mask(image, valid, saturation)
    good = valid & ~saturated
    centre = _point_symmetry_centre(image, good)
    yy, xx = np.mgrid[0 : image.shape[0], 0 : image.shape[1]].astype(float)
    rho = np.hypot(yy - centre[0], xx - centre[1])
    r_min = _inner_radius(rho, valid, saturated, image, good)
    spots = _find_spots(image, good, centre, r_min)
    if len(spots) < 6:
        raise CalibrationFailedError(
            f"only {len(spots)} spot(s) found: a single-crystal calibration needs at least 6"
        )
    # offsets (x, y) from the centre
    d = np.column_stack([spots[:, 1] - centre[1], spots[:, 0] - centre[0]])
    # every reflection whose spot could fall on the detector, for any plausible scale
    lengths = np.linalg.norm(d, axis=1)
    g_cap = 2 * math.sin(0.5 * math.atan(0.2)) / wavelength  # 2θ up to ~11°
    refl = zone_reflections(std, zone, g_cap)
    if len(refl) < 4:
        raise CalibrationFailedError(f"{std.name} [{zone}] has too few reflections")
    t = np.array(
        [
            np.array(g) / np.hypot(*g) * math.tan(2 * math.asin(wavelength * np.hypot(*g) / 2))
            for _, _, g, _ in refl
        ]
    )
    # the two shortest non-collinear spot vectors
    order = np.argsort(lengths)
    u1 = d[order[0]]
    u2 = next(
        (
            d[i]
            for i in order[1:]
            if abs(u1[0] * d[i, 1] - u1[1] * d[i, 0]) > 0.2 * lengths[i] * lengths[order[0]]
        ),
        None,
    )
    if u2 is None:
        raise CalibrationFailedError("the spots lie on one line: not a zone-axis pattern")
    t_len = np.linalg.norm(t, axis=1)
    intensity = np.array([r[3] for r in refl])
    short = np.argsort(t_len)[:12]
    tol = 2.0 + 0.01 * lengths
    best = None
    for a_i, b_i in itertools.permutations(short, 2):
        pair = np.column_stack([t[a_i], t[b_i]])
        if abs(np.linalg.det(pair)) < 1e-12 * t_len[a_i] * t_len[b_i]:
            continue
        b0 = np.column_stack([u1, u2]) @ np.linalg.inv(pair)
        pred = t @ b0.T
        dist = np.linalg.norm(d[:, None, :] - pred[None, :, :], axis=2)
        nearest = np.argmin(dist, axis=1)
        matched = dist[np.arange(len(d)), nearest] < tol
        # a map onto too fine a lattice explains every spot too: count the reflections it
        # puts on the detector (strong enough to be seen) where there is no spot
        where = pred + np.array([centre[1], centre[0]])
        on_detector = (
            (where[:, 0] > 3)
            & (where[:, 0] < image.shape[1] - 4)
            & (where[:, 1] > 3)
            & (where[:, 1] < image.shape[0] - 4)
            & (np.linalg.norm(pred, axis=1) > r_min)
            & (intensity > 0.2)
        )
        if matched.any():  # within the radius the spots reach
            on_detector &= np.linalg.norm(pred, axis=1) <= lengths[matched].max() + 2
        missing = int(np.sum(on_detector & (dist.min(axis=0) > 3.0)))
        # any basis of the same lattice indexes every spot; the true one is the map
        # nearest to a rotation (a distortion of a few percent, not a shear)
        evals = np.linalg.eigvalsh(b0 @ b0.T)
        shear = math.sqrt(evals[1] / max(evals[0], 1e-30))
        if shear > MAX_AXIS_RATIO:
            continue
        score = (int(matched.sum()) - 2 * missing, round(-shear, 3))
        if best is None or score > best[0]:
            best = (score, nearest, matched, missing)
    if best is None:
        raise CalibrationFailedError(
            f"no indexing of the spots as {std.name} [{zone}] with an axis ratio below "
            f"{MAX_AXIS_RATIO}: another crystal or zone axis"
        )
    _, nearest, matched, missing = best
    if matched.sum() < max(6, 0.7 * len(d)) or missing > 0.2 * matched.sum():
        raise CalibrationFailedError(
            f"only {int(matched.sum())} of {len(d)} spots index as {std.name} [{zone}] "
            f"({missing} expected spots absent): another crystal, another zone axis, or a "
            "tilted crystal"
        )
    # linear least squares: p = c + B t, for x and y separately
    tt = t[nearest[matched]]
    design = np.column_stack([np.ones(len(tt)), tt])
    coef, cov_xy, resid = [], [], []
    for k in range(2):
        target = d[matched, k] + (centre[1] if k == 0 else centre[0])
        sol, *_ = np.linalg.lstsq(design, target, rcond=None)
        res = target - design @ sol
        dof = max(len(target) - 3, 1)
        s2 = float(res @ res) / dof
        coef.append(sol)
        # a floor for the spot positions: the centroids of a few spots are not better
        # than 0.15 px whatever their scatter says
        cov_xy.append(np.linalg.inv(design.T @ design) * max(s2, 0.15**2))
        resid.append(res)
    resid = np.hypot(*resid)
    if np.sqrt(np.mean(resid**2)) > 1.5:
        raise CalibrationFailedError(
            f"the indexed spots deviate by {np.sqrt(np.mean(resid**2)):.1f} px rms from a "
            f"lattice of {std.name} [{zone}]: a tilted or strained crystal, or another zone"
        )

    def geometry(cx_, bx, cy_, by):
        b = np.array([bx, by])  # rows: x, y components
        m = b @ b.T
        evals, evecs = np.linalg.eigh(m)
        k = (evals[0] * evals[1]) ** 0.25
        ratio = math.sqrt(evals[1] / evals[0])
        major = evecs[:, 1]
        angle = math.degrees(math.atan2(major[1], major[0])) % 180.0
        return np.array([k, ratio, angle, cy_, cx_])

    x_par, y_par = coef
    base = geometry(x_par[0], x_par[1:], y_par[0], y_par[1:])
    # propagate the two independent fits' covariances numerically
    params = np.r_[x_par, y_par]
    cov = np.zeros((6, 6))
    cov[:3, :3], cov[3:, 3:] = cov_xy
    jac = np.zeros((5, 6))
    for i in range(6):
        step = 1e-6 * max(abs(params[i]), 1.0)
        p = params.copy()
        p[i] += step
        out = geometry(p[0], p[1:3], p[3], p[4:6])
        diff = out - base
        diff[2] = (diff[2] + 90) % 180 - 90
        jac[:, i] = diff / step
    cov_g = jac @ cov @ jac.T
    sig = np.sqrt(np.maximum(np.diag(cov_g), 0))
    l_px, ratio, angle, cy, cx = base
    l_sigma = math.hypot(sig[0], CAMERA_LENGTH_FLOOR * l_px)
    families = {}
    for j, r in zip(nearest[matched], resid):
        families.setdefault(j, []).append(r)
    rings = []
    seen = set()
    for j in sorted(families, key=lambda j: t_len[j]):
        label = refl[j][0]
        if label in seen:
            continue
        seen.add(label)
        group = [r for k, rs in families.items() if refl[k][0] == label for r in rs]
        rings.append(
            RingFit(
                label,
                refl[j][1],
                float(l_px * t_len[j]),
                float(sig[0] * t_len[j]),
                float(np.sqrt(np.mean(np.square(group)))),
                len(group),
                float(refl[j][3]),
            )
        )
    notes = [
        f"single crystal {std.name} [{zone}]: {int(matched.sum())} of {len(d)} spots indexed, "
        f"rms residual {np.sqrt(np.mean(resid**2)):.2f} px",
        f"lattice parameter of {std.name} taken as exact: {std.reference}",
    ]
    if ratio - 1 < 3 * sig[1]:
        notes.append(
            f"the distortion ({ratio:.4f}) is within 3σ of none: its angle is not determined"
        )
    return DiffractionCalibration(
        standard=std.name,
        camera_length=l_px * pixel,
        camera_length_sigma=l_sigma * pixel,
        beam_energy=float(beam_energy),
        detector_pixel_size=pixel,
        centre=(float(cy), float(cx)),
        centre_sigma=(float(sig[3]), float(sig[4])),
        axis_ratio=float(ratio),
        axis_ratio_sigma=float(sig[1]),
        angle_deg=float(angle),
        angle_sigma_deg=float(min(sig[2], 90.0)),
        camera_length_px=float(l_px),
        camera_length_px_sigma=float(l_sigma),
        rings=rings,
        profile_radius_px=np.zeros(0),
        profile=np.zeros(0),
        sources=dict(sources or {}),
        notes=notes,
    )
