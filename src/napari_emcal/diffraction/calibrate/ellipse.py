"""Step 4 of the calibration: each ring's radius in azimuthal sectors, and the joint
least-squares fit of the centre, the elliptical distortion and the undistorted radii."""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize

from ..simulate import corrected_radius
from .profile import _fit_gaussians, _gauss_sum

N_SECTORS = 36


def _clusters(radii, width):
    """Groups of ring indices closer than 6 widths (fitted together)."""
    order = np.argsort(radii)
    groups, current = [], [order[0]]
    for i in order[1:]:
        if radii[i] - radii[current[-1]] < 6 * width:
            current.append(i)
        else:
            groups.append(current)
            current = [i]
    groups.append(current)
    return groups


def _sector_radii(rho, azimuth, image, mask, ring_radii, width, bin_px=0.5):
    """Each ring's corrected radius in each azimuthal sector by Gaussian fits.

    Returns ``(ring index, sector azimuth (rad), radius, sigma, amplitude, amplitude
    sigma)`` rows for the fits that converged inside their window, and for each ring the
    number of sectors with enough valid pixels to try.
    """
    ring_radii = np.asarray(ring_radii, float)
    r_hi = ring_radii.max() + 6 * width + 2
    sel = mask & (rho < r_hi) & (rho > max(ring_radii.min() - 6 * width - 2, 0))
    r = rho[sel]
    values = image[sel]
    sector = ((azimuth[sel] + math.pi) / (2 * math.pi) * N_SECTORS).astype(int) % N_SECTORS
    nbins = int(r_hi / bin_px) + 1
    rbin = (r / bin_px).astype(int)
    key = sector * nbins + rbin
    total = N_SECTORS * nbins
    n = np.bincount(key, minlength=total).reshape(N_SECTORS, nbins)
    s = np.bincount(key, values, minlength=total).reshape(N_SECTORS, nbins)
    s2 = np.bincount(key, values * values, minlength=total).reshape(N_SECTORS, nbins)
    sr = np.bincount(key, r, minlength=total).reshape(N_SECTORS, nbins)
    rows = []
    available = np.zeros(len(ring_radii), int)
    groups = _clusters(ring_radii, width)
    for sec in range(N_SECTORS):
        phi = -math.pi + (sec + 0.5) * 2 * math.pi / N_SECTORS
        for group in groups:
            rs = ring_radii[group]
            lo = max(int((rs.min() - 4 * width - 1) / bin_px), 0)
            hi = min(int((rs.max() + 4 * width + 1) / bin_px) + 1, nbins)
            nn = n[sec, lo:hi]
            good = nn >= 3
            if good.sum() < 3 * len(group) + 4 or good.mean() < 0.8:
                continue
            available[group] += 1
            x = sr[sec, lo:hi][good] / nn[good]
            y = s[sec, lo:hi][good] / nn[good]
            var = np.maximum(s2[sec, lo:hi][good] / nn[good] - y**2, 0) / np.maximum(
                nn[good] - 1, 1
            )
            err = np.sqrt(var)
            # a bin of identical pixels has no spread: floor at a tenth of the typical
            floor = 0.1 * np.median(err[err > 0]) if (err > 0).any() else 1.0
            err = np.maximum(err, floor)
            edge = np.r_[y[:2], y[-2:]]
            xe = np.r_[x[:2], x[-2:]]
            slope, inter = np.polyfit(xe, edge, 1)
            p0 = [inter, slope]
            lower, upper = [-np.inf, -np.inf], [np.inf, np.inf]
            for rr in rs:
                amp = float(np.interp(rr, x, y) - (inter + slope * rr))
                p0 += [max(amp, 1e-6), rr, width]
                lower += [0.0, rr - 3 * width - 1, 0.3]
                upper += [np.inf, rr + 3 * width + 1, 4 * width + 2]
            fitted = _fit_gaussians(x, y, err, np.array(p0), np.array(lower), np.array(upper))
            if fitted is None:
                continue
            popt, pcov = fitted
            resid = (y - _gauss_sum(x, *popt)) / err
            chi2 = float(np.sum(resid**2) / max(len(x) - len(popt), 1))
            perr = np.sqrt(np.abs(np.diag(pcov))) * math.sqrt(max(chi2, 1.0))
            for k, ring in enumerate(group):
                amp, centre, sig = popt[2 + 3 * k : 5 + 3 * k]
                amp_err, centre_err = perr[2 + 3 * k], perr[3 + 3 * k]
                if not (np.isfinite(centre_err) and centre_err > 0):
                    continue
                if abs(centre - ring_radii[ring]) > 2.5 * width + 1:
                    continue
                rows.append((ring, phi, centre, centre_err, amp, amp_err))
    return np.array(rows, float).reshape(-1, 6), available


def _unpack(params):
    cy, cx, e1, e2 = params[:4]
    excess = math.hypot(e1, e2)
    return cy, cx, 1.0 + excess, (math.degrees(math.atan2(e2, e1)) / 2.0) % 180.0


def _fit_ellipse(rows, centre0, ratio0, angle0, radii0):
    """Least squares of centre, distortion and undistorted ring radii to sector radii
    measured in the corrected radius of the current estimate."""
    ring = rows[:, 0].astype(int)
    phi, rho_obs, err = rows[:, 1], rows[:, 2], rows[:, 3]
    # the measured points back on the detector, through the current estimate
    a0 = math.radians(angle0)
    scale = np.sqrt(np.cos(phi - a0) ** 2 / ratio0 + ratio0 * np.sin(phi - a0) ** 2)
    r_det = rho_obs / scale
    py = centre0[0] + r_det * np.sin(phi)
    px = centre0[1] + r_det * np.cos(phi)
    e_init = (ratio0 - 1.0) * np.array([math.cos(2 * a0), math.sin(2 * a0)])
    x0 = np.r_[centre0[0], centre0[1], e_init, radii0]
    keep = np.ones(len(rows), bool)

    def residuals(p, use):
        cy, cx, q, ang = _unpack(p)
        rho, _ = corrected_radius(py[use], px[use], (cy, cx), q, ang)
        return (rho - p[4:][ring[use]]) / err[use]

    for _ in range(3):
        fit = optimize.least_squares(residuals, x0, args=(keep,), x_scale="jac", method="lm")
        res = residuals(fit.x, np.ones(len(rows), bool))
        mad = 1.4826 * np.median(np.abs(res[keep] - np.median(res[keep])))
        new_keep = np.abs(res) < max(5 * mad, 4.0)
        x0 = fit.x
        if np.array_equal(new_keep, keep):
            break
        keep = new_keep
    fit = optimize.least_squares(residuals, x0, args=(keep,), x_scale="jac", method="lm")
    j = fit.jac
    dof = max(int(keep.sum()) - len(fit.x), 1)
    chi2 = float(np.sum(fit.fun**2) / dof)
    cov = np.linalg.pinv(j.T @ j) * max(chi2, 1.0)
    return fit.x, cov, keep, chi2
