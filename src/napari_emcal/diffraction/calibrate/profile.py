"""Step 3 of the calibration: the azimuthal profile, its background and significant
peaks, and the weighted Gaussian fits the sector radii use."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage, signal


def _profile(rho, image, mask, bin_px=0.5, r_max=None):
    """Mean, standard error and mean radius per radius bin (masked pixels left out)."""
    r = rho[mask]
    values = image[mask]
    r_max = r_max or float(r.max())
    nbins = int(r_max / bin_px) + 1
    idx = np.minimum((r / bin_px).astype(int), nbins - 1)
    n = np.bincount(idx, minlength=nbins).astype(float)
    s = np.bincount(idx, values, minlength=nbins)
    s2 = np.bincount(idx, values * values, minlength=nbins)
    sr = np.bincount(idx, r, minlength=nbins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s / n
        var = np.maximum(s2 / n - mean**2, 0)
        se = np.sqrt(var / np.maximum(n - 1, 1))
        radius = sr / n
    return radius, mean, se, n


def _background(profile, window):
    """A smooth lower envelope of ``profile`` (rolling minimum, then smoothed)."""
    filled = np.nan_to_num(profile, nan=np.nanmax(profile))
    low = ndimage.minimum_filter1d(filled, size=max(3, int(window)), mode="nearest")
    low = ndimage.uniform_filter1d(low, size=max(3, int(window)), mode="nearest")
    return np.minimum(low, filled)


@dataclass
class _Peak:
    radius: float
    height: float
    snr: float
    width: float  # FWHM, px


def _profile_peaks(radius, mean, se, n, r_min, min_snr=6.0, window_px=24.0, bin_px=0.5):
    """Significant peaks of an azimuthal profile beyond ``r_min``."""
    ok = (n >= 8) & np.isfinite(mean) & (radius > r_min)
    if ok.sum() < 20:
        return [], None
    first, last = np.flatnonzero(ok)[[0, -1]]
    sl = slice(first, last + 1)
    prof = np.where(ok[sl], mean[sl], np.nan)
    prof = _interp_nans(prof)
    noise = np.where(ok[sl], se[sl], np.inf)
    noise = np.maximum(noise, 1e-12)
    bg = _background(ndimage.gaussian_filter1d(prof, 2.0), window_px / bin_px)
    # a rolling minimum sits below the noise: lift it to the median of the bins between
    # the rings
    for _ in range(2):
        between = (prof - bg) < 2 * noise
        if between.sum() > 10:
            bg = bg + np.median((prof - bg)[between])
    sig = prof - bg
    smooth = ndimage.gaussian_filter1d(sig, 1.0)
    found, props = signal.find_peaks(smooth, prominence=0)
    peaks = []
    if len(found):
        widths = signal.peak_widths(smooth, found, rel_height=0.5)[0] * bin_px
        for k, j in enumerate(found):
            lo, hi = max(j - 1, 0), min(j + 2, len(sig))
            height = float(np.mean(sig[lo:hi]))
            err = float(np.sqrt(np.sum(noise[lo:hi] ** 2))) / (hi - lo)
            snr = height / err if err > 0 else 0.0
            prom = props["prominences"][k]
            if snr >= min_snr and prom > 0.5 * height:
                peaks.append(_Peak(float(radius[sl][j]), height, snr, float(widths[k])))
    return peaks, (radius[sl], prof, bg)


def _interp_nans(values):
    bad = ~np.isfinite(values)
    if bad.any() and (~bad).any():
        idx = np.arange(len(values))
        values = values.copy()
        values[bad] = np.interp(idx[bad], idx[~bad], values[~bad])
    return values


def _gauss_sum(x, *p):
    """Linear background p[0] + p[1] x plus Gaussians (amplitude, centre, sigma) ..."""
    out = p[0] + p[1] * x
    for k in range(2, len(p), 3):
        out = out + p[k] * np.exp(-0.5 * ((x - p[k + 1]) / p[k + 2]) ** 2)
    return out


def _fit_gaussians(x, y, err, p0, lower, upper, iterations=30):
    """Weighted least squares of :func:`_gauss_sum` by Levenberg–Marquardt with the
    analytic Jacobian (hundreds of small fits per pattern: scipy's generic fitters with
    numerical derivatives take seconds). Returns (parameters, covariance) or None."""
    w = 1.0 / err
    p = p0.astype(float).copy()

    def model_jac(p):
        jac = np.empty((len(x), len(p)))
        jac[:, 0] = 1.0
        jac[:, 1] = x
        out = p[0] + p[1] * x
        for k in range(2, len(p), 3):
            amp, mu, sig = p[k : k + 3]
            u = (x - mu) / sig
            g = np.exp(-0.5 * u * u)
            out = out + amp * g
            jac[:, k] = g
            jac[:, k + 1] = amp * g * u / sig
            jac[:, k + 2] = amp * g * u * u / sig
        return out, jac

    lam = 1e-3
    model, jac = model_jac(p)
    cost = float(np.sum(((y - model) * w) ** 2))
    for _ in range(iterations):
        jw = jac * w[:, None]
        rw = (y - model) * w
        a = jw.T @ jw
        g = jw.T @ rw
        try:
            delta = np.linalg.solve(a + lam * np.diag(np.diag(a) + 1e-12), g)
        except np.linalg.LinAlgError:
            return None
        trial = np.clip(p + delta, lower, upper)
        t_model, t_jac = model_jac(trial)
        t_cost = float(np.sum(((y - t_model) * w) ** 2))
        if t_cost < cost:
            converged = cost - t_cost < 1e-8 * cost
            p, model, jac, cost = trial, t_model, t_jac, t_cost
            lam = max(lam / 5, 1e-9)
            if converged:
                break
        else:
            lam *= 10
            if lam > 1e8:
                break
    jw = jac * w[:, None]
    try:
        cov = np.linalg.inv(jw.T @ jw)
    except np.linalg.LinAlgError:
        return None
    if not np.all(np.isfinite(cov)):
        return None
    return p, cov
