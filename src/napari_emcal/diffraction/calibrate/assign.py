"""Step 5 of the calibration: rings rather than spots (the sector coverage, bright
isolated maxima), and the assignment of the rings to the standard's reflections."""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from ...errors import CalibrationFailedError
from ..standards import Standard


def _has_spots(image, good, rho, r_min) -> bool:
    """Whether compact bright maxima stand far above the local background (Bragg spots)."""
    smooth = ndimage.gaussian_filter(np.where(good, image, 0.0), 1.5)
    local = ndimage.median_filter(smooth, size=15)
    excess = (smooth - local)[good & (rho > r_min)]
    if excess.size == 0:
        return False
    spread = 1.4826 * np.median(np.abs(excess - np.median(excess))) + 1e-12
    peaks = ndimage.maximum_filter(smooth - local, size=9) == (smooth - local)
    strong = peaks & good & (rho > r_min) & (smooth - local > 30 * spread)
    return 2 <= int(strong.sum()) <= 500


def _check_coverage(rows, available, what):
    """Refuse spots: rings are found in most of the sectors where they lie on the
    detector, a single crystal's spots in few."""
    n_rings = len(available)
    if len(rows) == 0:
        raise CalibrationFailedError(
            f"{what} could not be measured in any azimuthal sector: spots rather than "
            "rings (a single crystal), or rings too faint"
        )
    counts = np.bincount(rows[:, 0].astype(int), minlength=n_rings)
    # amplitude significant in the sector
    significant = rows[rows[:, 4] > 3 * rows[:, 5]]
    sig_counts = np.bincount(significant[:, 0].astype(int), minlength=n_rings)
    coverage = float(np.median(sig_counts / np.maximum(available, 1)))
    if coverage < 0.5:
        raise CalibrationFailedError(
            f"{what} appear in only {100 * coverage:.0f} % of the azimuthal sectors they "
            f"cross (median): spots rather than rings (a single crystal or a few large grains), "
            "or rings too faint to follow around the circle"
        )
    return counts


def _assign(peaks, std: Standard, wavelength, r_min, r_max, width):
    """Match the observed rings to the standard's reflections: the scale L/p (px) under
    which every significant ring is a reflection and every reflection expected to be
    visible is seen.

    Returns the assigned reflections (in order of radius), the scale, and the radii of the
    weak rings that are no reflection of the standard.
    """
    # reflections out to well beyond the detector for any plausible scale
    reflections = std.reflections(d_min=0.3e-10)
    if not reflections:
        raise CalibrationFailedError(f"standard {std.name} has no reflections")
    t_all = np.array(
        [math.tan(2 * math.asin(min(wavelength / (2 * r.d_spacing), 0.99))) for r in reflections]
    )
    inten = np.array([r.intensity for r in reflections])
    obs = np.array([p.radius for p in peaks])
    height = np.array([p.height for p in peaks])
    snr = np.array([p.snr for p in peaks])
    order = np.argsort(-snr)[:4]
    tol = np.maximum(2.0 * width, 0.012 * obs)
    best = None
    for j in order:
        for i in range(min(len(reflections), 10)):
            scale = obs[j] / t_all[i]
            pred = scale * t_all
            inside = (pred > r_min) & (pred < r_max)
            if inside.sum() < 1:
                continue
            # each observed ring to its nearest predicted one
            near = np.argmin(np.abs(pred[None, :] - obs[:, None]), axis=1)
            matched = np.abs(pred[near] - obs) < tol
            if matched.sum() < 2:
                continue
            # refine the scale on the matched rings
            scale = float(
                np.sum(obs[matched] * t_all[near[matched]]) / np.sum(t_all[near[matched]] ** 2)
            )
            pred = scale * t_all
            inside = (pred > r_min) & (pred < r_max)
            near = np.argmin(np.abs(pred[None, :] - obs[:, None]), axis=1)
            matched = np.abs(pred[near] - obs) < tol
            # how bright each expected ring should look: the matched rings' height per
            # unit of kinematic intensity (the lower quartile: dynamical effects and
            # texture make the kinematic intensities a rough guide)
            per_unit = np.percentile(height[matched] / np.maximum(inten[near[matched]], 1e-6), 25)
            noise = np.median(height / snr)
            seen = set(near[matched].tolist())
            missing = [
                k
                for k in np.flatnonzero(inside)
                if k not in seen
                and per_unit * inten[k] > 8 * noise
                and np.min(np.abs(pred[k] - pred[list(seen)])) > 5 * width
            ]
            # a weak ring of another phase (an oxide, the support) is tolerated; a strong
            # one means the scale, or the standard, is wrong
            strong = height > 0.15 * height[matched].max()
            unexplained = int((~matched & strong).sum())
            score = (
                int(matched.sum()) - 2 * unexplained - 2 * len(missing),
                -float(np.mean(np.abs(pred[near[matched]] - obs[matched]) / tol[matched])),
            )
            if best is None or score > best[0]:
                best = (score, scale, near.copy(), matched.copy(), missing, unexplained)
    if best is None:
        raise CalibrationFailedError(
            f"the rings' radii ({', '.join(f'{r:.0f}' for r in obs)} px) match no scale of "
            f"{std.name}'s reflections: not {std.name}"
        )
    _, scale, near, matched, missing, unexplained = best
    if unexplained or missing:
        parts = []
        if unexplained:
            strong = height > 0.15 * height[matched].max()
            parts.append(
                "rings at "
                + ", ".join(f"{r:.0f}" for r in obs[~matched & strong])
                + f" px are no reflection of {std.name}"
            )
        if missing:
            parts.append(
                f"{std.name}'s "
                + ", ".join(reflections[k].label for k in missing)
                + " ring(s) expected at "
                + ", ".join(f"{scale * t_all[k]:.0f}" for k in missing)
                + " px are absent"
            )
        raise CalibrationFailedError(
            f"these rings are not {std.name}'s ({std.space_group or 'd-spacing list'}): "
            + "; ".join(parts)
        )
    if matched.sum() < 3:
        raise CalibrationFailedError(
            f"only {int(matched.sum())} ring(s) match {std.name}: at least 3 are needed"
        )
    assigned = sorted(set(near[matched].tolist()))
    if len(assigned) < matched.sum():
        raise CalibrationFailedError(
            "two observed rings fall on one reflection: the rings are not resolved"
        )
    # a ring blended with a neighbouring reflection would be measured off its position
    pred = scale * t_all
    resolved = [
        k
        for k in assigned
        if not any(
            j != k and abs(pred[j] - pred[k]) < 4 * width and inten[j] > 0.1 * inten[k]
            for j in range(len(reflections))
        )
    ]
    if len(resolved) < 3:
        raise CalibrationFailedError(
            f"only {len(resolved)} of the {len(assigned)} rings are resolved from their "
            "neighbours: at least 3 are needed"
        )
    strong = height > 0.15 * height[matched].max()
    return [reflections[k] for k in resolved], scale, [float(r) for r in obs[~matched & ~strong]]
