"""Camera length, beam centre and elliptical distortion from the rings of a polycrystalline
standard, with standard errors, per-ring residuals, and refusals with the reason.

The method:

1. **Mask** non-finite and saturated pixels, and (after a first centre) a beam stop: pixels
   far darker than the azimuthal median at their radius.
2. **Centre** from the pattern's point symmetry: an elliptical ring pattern is symmetric
   through its centre, so the band-passed, masked image convolved with itself peaks at
   twice the centre. Robust to a saturated central beam and a beam stop (both masked).
3. **Rings**: peaks of the azimuthal profile, significant against its own standard error.
4. **Ellipse**: in 36 azimuthal sectors, each ring's radius is found by a Gaussian fit (in
   the radius corrected by the current ellipse estimate); the centre, the distortion
   ``(q − 1)(cos 2α, sin 2α)`` and every ring's undistorted radius are refined together by
   weighted least squares. Repeated until the corrected rings are circles.
5. **Assignment** of the rings to the standard's reflections: the scale (camera length in
   pixels) that explains every significant ring and leaves no ring of the standard that
   should be visible unseen, among the scales that put each observed ring on each
   reflection (a ratio test).
6. **Camera length**: generalised least squares of the undistorted radii against
   ``tan 2θ`` of the assigned reflections, with their covariance from step 4.

Geometry and conventions (the simulator's, :mod:`.simulate`): the camera length refers to
the geometric-mean radius of the distorted rings (the distortion keeps areas); the axis
ratio is major/minor (>= 1); the angle is the major axis's direction in degrees from +x
towards +y (clockwise as napari shows an image), in [0, 180).

Pure NumPy/SciPy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage, optimize, signal

from ...errors import CalibrationFailedError, Cancelled, InvalidDataError, InvalidParameterError
from ..simulate import corrected_radius
from ..standards import Standard, electron_wavelength, get_standard

__all__ = ["DiffractionCalibration", "RingFit", "calibrate_camera_length"]

#: Relative systematic floor added to the camera length's standard error: what the
#: statistical error leaves out (the sector fits' small biases with close rings, the
#: simulated coverage in tests/diffraction/test_calibrate.py). The standard's own lattice
#: parameter is taken as exact (see the notes).
CAMERA_LENGTH_FLOOR = 2e-4
N_SECTORS = 36


@dataclass(frozen=True)
class RingFit:
    """One ring as fitted: the reflection, its undistorted radius and residual.

    ``radius_px`` is the ring's undistorted radius fitted freely (px); ``residual_px`` is
    that minus the radius the camera length predicts; ``sectors`` the number of azimuthal
    sectors in which the ring was measured (of :data:`N_SECTORS`).
    """

    label: str
    d_spacing: float
    radius_px: float
    sigma_px: float
    residual_px: float
    sectors: int
    intensity_expected: float


@dataclass
class DiffractionCalibration:
    """The result: values in SI units (angles in degrees) with standard errors and
    sources, the fitted rings, and the distortion-corrected azimuthal profile."""

    standard: str
    camera_length: float
    camera_length_sigma: float
    beam_energy: float
    detector_pixel_size: float
    centre: tuple[float, float]
    centre_sigma: tuple[float, float]
    axis_ratio: float
    axis_ratio_sigma: float
    angle_deg: float
    angle_sigma_deg: float
    camera_length_px: float
    camera_length_px_sigma: float
    rings: list[RingFit]
    profile_radius_px: np.ndarray
    profile: np.ndarray
    sources: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def wavelength(self) -> float:
        """Electron wavelength (m)."""
        return electron_wavelength(self.beam_energy)

    @property
    def reciprocal_pixel_size(self) -> float:
        """Spatial frequency per detector pixel near the axis (m⁻¹ / px): p / (λ L)."""
        return 1.0 / (self.wavelength * self.camera_length_px)

    @property
    def reciprocal_pixel_size_sigma(self) -> float:
        return self.reciprocal_pixel_size * self.camera_length_px_sigma / self.camera_length_px

    @property
    def angle_per_pixel(self) -> float:
        """Scattering angle per detector pixel near the axis (rad / px): p / L."""
        return 1.0 / self.camera_length_px

    @property
    def camera_constant(self) -> float:
        """λ L (m²): d × R for a ring of radius R (m on the detector)."""
        return self.wavelength * self.camera_length

    def values(self) -> dict[str, dict]:
        """``{name: {"value", "unit", "sigma", "source"}}`` (the CLI's JSON)."""
        fitted = f"fitted to the rings of {self.standard}"
        rel = self.camera_length_px_sigma / self.camera_length_px
        return {
            "camera_length": _v(self.camera_length, "m", self.camera_length_sigma, fitted),
            "centre": _v(list(self.centre), "px", list(self.centre_sigma), fitted),
            "ellipse_axis_ratio": _v(self.axis_ratio, "", self.axis_ratio_sigma, fitted),
            "ellipse_angle_deg": _v(self.angle_deg, "deg", self.angle_sigma_deg, fitted),
            "reciprocal_pixel_size": _v(
                self.reciprocal_pixel_size, "1/m", self.reciprocal_pixel_size_sigma, fitted
            ),
            "angle_per_pixel": _v(self.angle_per_pixel, "rad", self.angle_per_pixel * rel, fitted),
            "camera_length_px": _v(
                self.camera_length_px, "px", self.camera_length_px_sigma, fitted
            ),
            "beam_energy": _v(self.beam_energy, "eV", None, self.sources.get("beam_energy", "")),
            "detector_pixel_size": _v(
                self.detector_pixel_size, "m", None, self.sources.get("detector_pixel_size", "")
            ),
            "wavelength": _v(self.wavelength, "m", None, "relativistic, from the beam energy"),
        }

    def to_json(self) -> dict:
        return {
            "values": self.values(),
            "notes": list(self.notes),
            "standard": self.standard,
            "rings": [
                {
                    "hkl": r.label,
                    "d_spacing_m": r.d_spacing,
                    "radius_px": r.radius_px,
                    "sigma_px": r.sigma_px,
                    "residual_px": r.residual_px,
                    "sectors": r.sectors,
                }
                for r in self.rings
            ],
        }

    def summary_lines(self) -> list[str]:
        """Human-readable lines in the units microscopists read."""
        spots = len(self.profile) == 0  # a single crystal's indexed spots, not rings
        kind, where = ("reflections", "spots") if spots else ("rings", "sectors")
        cy, cx = self.centre
        sy, sx = self.centre_sigma
        lines = [
            f"camera length   {self.camera_length * 1e3:.3f} ± {self.camera_length_sigma * 1e3:.3f}"
            f" mm ({self.standard}, {len(self.rings)} {kind})",
            f"reciprocal px   {self.reciprocal_pixel_size * 1e-9:.6f} ± "
            f"{self.reciprocal_pixel_size_sigma * 1e-9:.6f} nm⁻¹/px; "
            f"{self.angle_per_pixel * 1e3:.5f} mrad/px",
            f"centre          ({cy:.2f} ± {sy:.2f}, {cx:.2f} ± {sx:.2f}) px (y, x)",
            f"ellipse         ratio {self.axis_ratio:.4f} ± {self.axis_ratio_sigma:.4f}, "
            f"major axis {self.angle_deg:.1f} ± {min(self.angle_sigma_deg, 90):.1f}°",
        ]
        lines += [
            f"  {kind[:-1]} {r.label:>6}: d {r.d_spacing * 1e10:.4f} Å, R {r.radius_px:8.2f} ± "
            f"{r.sigma_px:.2f} px, residual {r.residual_px:+.2f} px, {r.sectors} {where}"
            for r in self.rings
        ]
        return lines

    def ellipse_px(self, ring: RingFit) -> tuple[float, float]:
        """Semi-major and semi-minor axes (px) of ``ring`` on the detector."""
        q = math.sqrt(self.axis_ratio)
        return ring.radius_px * q, ring.radius_px / q

    def p_ellipse(self, ring_radius_px: float | None = None) -> tuple[float, ...]:
        """py4DSTEM's ``p_ellipse = (qx0, qy0, a, b, theta)``: py4DSTEM's qx is the first
        array axis (our y), theta the major axis's angle in radians measured from its qx
        (rows) axis towards qy; a, b the semi-axes (px) of one ring."""
        radius = ring_radius_px if ring_radius_px is not None else self.rings[0].radius_px
        q = math.sqrt(self.axis_ratio)
        # our angle is from +x (columns, py4DSTEM's qy) towards +y (rows, its qx)
        theta = math.radians(90.0 - self.angle_deg)
        return (self.centre[0], self.centre[1], radius * q, radius / q, theta)


def _v(value, unit, sigma, source) -> dict:
    return {"value": value, "unit": unit, "sigma": sigma, "source": source}


# ----------------------------------------------------------------------------- helpers


def _check_image(image) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 2:
        raise InvalidDataError(f"a diffraction pattern must be 2D; got shape {image.shape}")
    if min(image.shape) < 64:
        raise InvalidDataError(f"pattern {image.shape} is too small (at least 64 x 64)")
    if image.dtype.kind not in "iuf":
        raise InvalidDataError(f"pattern of type {image.dtype} is not numeric")
    return image.astype(np.float64)


def _saturation_mask(image: np.ndarray, valid: np.ndarray, saturation: float | None):
    """Pixels at the detector's saturation (given, or the maximum when many pixels share
    it), grown by two pixels."""
    top = float(image[valid].max())
    level = saturation
    if level is None:
        at_top = np.count_nonzero(image[valid] >= top)
        if at_top >= 5 and top > 0:
            level = top
    if level is None:
        return np.zeros(image.shape, bool)
    return ndimage.binary_dilation(image >= level, iterations=2) & valid


def _point_symmetry_centre(image, mask) -> tuple[float, float]:
    """Centre of point symmetry: the peak of the band-passed image convolved with itself,
    at twice the centre."""
    ny, nx = image.shape
    filled = np.where(mask, image, 0.0)
    weight = ndimage.gaussian_filter(mask.astype(float), 4) + 1e-9
    smooth = ndimage.gaussian_filter(filled, 4) / weight
    fine = ndimage.gaussian_filter(filled, 1) / (
        ndimage.gaussian_filter(mask.astype(float), 1) + 1e-9
    )
    band = np.where(ndimage.binary_erosion(mask, iterations=5), fine - smooth, 0.0)
    # the strongest features (the central beam's edge) would dominate: compress them
    scale = np.percentile(np.abs(band[mask]), 99.5) + 1e-12
    band = np.tanh(band / scale)
    size = (2 * ny, 2 * nx)
    spectrum = np.fft.rfft2(band, size)
    conv = np.fft.irfft2(spectrum * spectrum, size)
    # only centres inside the detector
    conv[ny * 2 - 1 :, :] = -np.inf
    conv[:, nx * 2 - 1 :] = -np.inf
    py, px = np.unravel_index(np.argmax(conv), conv.shape)

    def vertex(m, c, p):
        if m == -np.inf or p == -np.inf:
            return 0.0
        denom = m - 2 * c + p
        return 0.5 * (m - p) / denom if denom < 0 else 0.0

    c = conv[py, px]
    oy = vertex(conv[py - 1, px], c, conv[(py + 1) % size[0], px])
    ox = vertex(conv[py, px - 1], c, conv[py, (px + 1) % size[1]])
    return (py + oy) / 2.0, (px + ox) / 2.0


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


# ------------------------------------------------------------------------- the method


def calibrate_camera_length(
    image,
    *,
    standard: str | Standard = "Au",
    beam_energy: float,
    detector_pixel_size: float,
    saturation: float | None = None,
    mask=None,
    centre_guess: tuple[float, float] | None = None,
    sources: dict[str, str] | None = None,
    progress=None,
    cancelled=None,
) -> DiffractionCalibration:
    """Calibrate the camera length, centre and elliptical distortion from a ring pattern.

    Parameters
    ----------
    image : 2D array
        The diffraction pattern (counts or any linear intensity).
    standard : str or Standard
        A built-in standard (``"Au"``, ``"Al"``, ``"Ag"``, ``"Si"``, ``"MgO"``,
        ``"TlCl"``), a d-spacing file, or a :class:`~.standards.Standard`.
    beam_energy : float
        Electron energy (eV), i.e. the accelerating voltage in V.
    detector_pixel_size : float
        Physical detector pixel (m).
    saturation : float or None
        Count at which the detector saturates; None: the maximum, when many pixels
        share it.
    mask : 2D bool array or None
        True where pixels are valid (dead pixels, a known beam stop False).
    centre_guess : (cy, cx) or None
        Skip the point-symmetry search and start here.
    sources : dict
        Where ``beam_energy`` and ``detector_pixel_size`` came from (kept in the result).
    progress : callable(float) or None
        Called with the fraction done.
    cancelled : callable() -> bool, or None
        Polled between steps; True raises :class:`~napari_emcal.errors.Cancelled`.

    Returns
    -------
    DiffractionCalibration

    Raises
    ------
    InvalidParameterError
        A non-positive pixel size, an implausible energy, an unknown standard.
    InvalidDataError
        Not a 2D numeric image, too small.
    CalibrationFailedError
        The pattern does not show the standard's rings: the reason says why (no
        significant rings — noise or a featureless image; broad halos — an amorphous
        film; spots, not rings — a single crystal; rings that are not the standard's —
        another structure; too few rings).
    """
    std = get_standard(standard)
    wavelength = electron_wavelength(beam_energy)
    pixel = float(detector_pixel_size)
    if not (math.isfinite(pixel) and 1e-7 <= pixel <= 1e-3):
        raise InvalidParameterError(
            f"detector pixel size {detector_pixel_size} m is outside 0.1 µm – 1 mm"
        )
    image = _check_image(image)

    def step(fraction):
        if cancelled is not None and cancelled():
            raise Cancelled("camera-length calibration cancelled")
        if progress is not None:
            progress(fraction)

    ny, nx = image.shape
    valid = np.isfinite(image)
    if mask is not None:
        mask = np.asarray(mask, bool)
        if mask.shape != image.shape:
            raise InvalidDataError(f"mask {mask.shape} does not match the pattern {image.shape}")
        valid &= mask
    if valid.sum() < 0.3 * image.size:
        raise InvalidDataError("fewer than 30 % of the pattern's pixels are valid")
    image = np.where(valid, image, 0.0)
    values = image[valid]
    if float(values.max() - values.min()) <= 0 or np.std(values) == 0:
        raise CalibrationFailedError("the pattern is featureless (constant): no rings to fit")
    notes: list[str] = []
    saturated = _saturation_mask(image, valid, saturation)
    if saturated.any():
        notes.append(f"{int(saturated.sum())} saturated pixels (and their neighbours) left out")
    good = valid & ~saturated
    step(0.05)

    # 1-2. centre by point symmetry, then a beam stop from the azimuthal median
    if centre_guess is None:
        centre = _point_symmetry_centre(image, good)
    else:
        centre = (float(centre_guess[0]), float(centre_guess[1]))
    yy, xx = np.mgrid[0:ny, 0:nx].astype(float)
    good = good & ~_beam_stop(image, good, yy, xx, centre)
    step(0.15)

    # 3. rings in the circular profile
    rho, azimuth = corrected_radius(yy, xx, centre, 1.0, 0.0)
    r_min = _inner_radius(rho, valid, saturated, image, good)
    radius, mean, se, n = _profile(rho, image, good)
    peaks, _ = _profile_peaks(radius, mean, se, n, r_min)
    if not peaks:
        spots = _has_spots(image, good, rho, r_min)
        raise CalibrationFailedError(
            "no significant rings: "
            + (
                "isolated bright spots instead — a single crystal, not a polycrystal"
                if spots
                else "the pattern is noise or featureless (no peak of the azimuthal profile "
                "stands 6 standard errors above its background)"
            )
        )
    sharp = [p for p in peaks if p.width < max(0.06 * p.radius, 8.0)]
    if not sharp:
        raise CalibrationFailedError(
            f"only broad peaks (FWHM {', '.join(f'{p.width:.0f}' for p in peaks)} px at radii "
            f"{', '.join(f'{p.radius:.0f}' for p in peaks)} px), no sharp ring: an amorphous "
            "film's halos, or rings too weak or smeared to measure — not a polycrystal's rings"
        )
    step(0.25)

    # 4. the ellipse from the strongest sharp rings, then all rings
    strongest = sorted(sharp, key=lambda p: -p.snr)[:4]
    width = float(np.clip(np.median([p.width for p in strongest]) / 2.355, 0.8, 20))
    radii = np.array(sorted(p.radius for p in strongest))
    ratio, angle = 1.0, 0.0
    for it in range(3):
        rho, azimuth = corrected_radius(yy, xx, centre, ratio, angle)
        rows, available = _sector_radii(rho, azimuth, image, good, radii, width)
        _check_coverage(rows, available, "the strongest rings")
        params, cov, keep, chi2 = _fit_ellipse(rows, centre, ratio, angle, radii)
        centre = (params[0], params[1])
        _, _, ratio, angle = _unpack(params)
        radii = params[4:]
        step(0.3 + 0.1 * it)

    # rings again, in the corrected profile
    rho, azimuth = corrected_radius(yy, xx, centre, ratio, angle)
    radius, mean, se, n = _profile(rho, image, good)
    peaks, curve = _profile_peaks(radius, mean, se, n, r_min)
    sharp = [p for p in peaks if p.width < max(0.06 * p.radius, 8.0)]
    r_max = _outer_radius(rho, good)
    sharp = [p for p in sharp if p.radius < r_max]
    if len(sharp) < 3:
        raise CalibrationFailedError(
            f"only {len(sharp)} sharp ring(s) found; at least 3 are needed to tell the "
            f"standard's rings from another structure's"
        )
    width = float(np.clip(np.median([p.width for p in sharp]) / 2.355, 0.8, 20))
    step(0.6)

    # 5. assignment
    reflections, scale, ignored = _assign(sharp, std, wavelength, r_min, r_max, width)
    if ignored:
        notes.append(
            "weak rings at " + ", ".join(f"{r:.0f}" for r in ignored) + f" px are no "
            f"reflection of {std.name} (another phase, or an artefact): left out"
        )
    step(0.7)

    # 4'. final ellipse with every assigned ring
    t = np.array([math.tan(2 * math.asin(wavelength / (2 * r.d_spacing))) for r in reflections])
    radii = scale * t
    for it in range(2):
        rho, azimuth = corrected_radius(yy, xx, centre, ratio, angle)
        rows, available = _sector_radii(rho, azimuth, image, good, radii, width)
        _check_coverage(rows, available, "the rings")
        params, cov, keep, chi2 = _fit_ellipse(rows, centre, ratio, angle, radii)
        centre = (params[0], params[1])
        _, _, ratio, angle = _unpack(params)
        radii = params[4:]
        step(0.75 + 0.1 * it)
    used = rows[keep]
    sectors = np.bincount(used[:, 0].astype(int), minlength=len(radii))
    enough = sectors >= N_SECTORS // 4
    if enough.sum() < 3:
        raise CalibrationFailedError("fewer than 3 rings were measured in enough sectors")

    # 6. camera length (px) by generalised least squares on the undistorted radii
    idx = np.flatnonzero(enough)
    c_r = cov[4:, 4:][np.ix_(idx, idx)]
    weights = np.linalg.pinv(c_r)
    tt = t[idx]
    info = float(tt @ weights @ tt)
    l_px = float(tt @ weights @ radii[idx]) / info
    resid = radii[idx] - l_px * tt
    chi2_l = float(resid @ weights @ resid) / max(len(idx) - 1, 1)
    l_sigma = math.sqrt(1.0 / info * max(chi2_l, 1.0))
    l_sigma = math.hypot(l_sigma, CAMERA_LENGTH_FLOOR * l_px)
    if chi2_l > 25:
        notes.append(
            f"the rings fit the standard's spacings poorly (χ²/dof {chi2_l:.1f}): a strained "
            "or off-stoichiometry film, or detector distortion beyond an ellipse; the error "
            "is scaled up accordingly"
        )
    rel_misfit = np.abs(resid) / (l_px * tt)
    z_misfit = np.abs(resid) / np.sqrt(np.diag(c_r))
    if np.any((rel_misfit > 0.01) & (z_misfit > 5)):
        raise CalibrationFailedError(
            f"ring {reflections[idx[np.argmax(rel_misfit)]].label} is "
            f"{100 * rel_misfit.max():.1f} % off the standard's spacing: these rings are not "
            f"{std.name}'s"
        )

    # uncertainties of the geometry
    e1, e2 = params[2], params[3]
    c_e = cov[2:4, 2:4]
    excess = math.hypot(e1, e2)
    if excess > 0:
        g = np.array([e1, e2]) / excess
        ratio_sigma = float(math.sqrt(max(g @ c_e @ g, 0)))
        perp = np.array([-e2, e1]) / excess
        angle_sigma = math.degrees(math.sqrt(max(perp @ c_e @ perp, 0)) / excess / 2)
    else:
        ratio_sigma = float(math.sqrt(max(np.trace(c_e) / 2, 0)))
        angle_sigma = 90.0
    angle_sigma = min(angle_sigma, 90.0)
    if ratio - 1 < 3 * ratio_sigma:
        notes.append(
            f"the distortion ({ratio:.4f}) is within 3σ of none: its angle is not determined"
        )
    centre_sigma = (float(math.sqrt(cov[0, 0])), float(math.sqrt(cov[1, 1])))
    rings = [
        RingFit(
            reflections[i].label,
            reflections[i].d_spacing,
            float(radii[i]),
            float(math.sqrt(cov[4 + i, 4 + i])),
            float(radii[i] - l_px * t[i]),
            int(sectors[i]),
            reflections[i].intensity,
        )
        for i in idx
    ]
    notes.append(
        f"lattice parameter of {std.name} taken as exact: {std.reference}; an evaporated "
        "film may differ by ~0.1 %"
        if std.lattice_parameter
        else f"{std.reference}"
    )
    step(1.0)
    prof_r, prof, _ = curve if curve is not None else (radius, mean, None)
    return DiffractionCalibration(
        standard=std.name,
        camera_length=l_px * pixel,
        camera_length_sigma=l_sigma * pixel,
        beam_energy=float(beam_energy),
        detector_pixel_size=pixel,
        centre=(float(centre[0]), float(centre[1])),
        centre_sigma=centre_sigma,
        axis_ratio=float(ratio),
        axis_ratio_sigma=ratio_sigma,
        angle_deg=float(angle),
        angle_sigma_deg=float(angle_sigma),
        camera_length_px=l_px,
        camera_length_px_sigma=l_sigma,
        rings=rings,
        profile_radius_px=np.asarray(prof_r),
        profile=np.asarray(prof),
        sources=dict(sources or {}),
        notes=notes,
    )


def _beam_stop(image, good, yy, xx, centre):
    """Pixels much darker than the azimuthal median at their radius (a beam stop's shadow),
    grown by three pixels."""
    r = np.hypot(yy - centre[0], xx - centre[1])
    smooth = ndimage.gaussian_filter(np.where(good, image, 0), 2) / (
        ndimage.gaussian_filter(good.astype(float), 2) + 1e-9
    )
    rbin = r.astype(int)
    nb = rbin.max() + 1
    order = np.argsort(rbin[good], kind="stable")
    vals = smooth[good][order]
    bins = rbin[good][order]
    edges = np.searchsorted(bins, np.arange(nb + 1))
    median = np.zeros(nb)
    for b in range(nb):
        seg = vals[edges[b] : edges[b + 1]]
        median[b] = np.median(seg) if len(seg) else 0.0
    dark = good & (smooth < 0.25 * median[rbin]) & (median[rbin] > 0)
    # only a connected shadow of some size counts
    labels, count = ndimage.label(dark)
    if count == 0:
        return np.zeros_like(good)
    sizes = ndimage.sum(dark, labels, index=np.arange(1, count + 1))
    big = np.isin(labels, 1 + np.flatnonzero(sizes >= 30))
    return ndimage.binary_dilation(big, iterations=3)


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


def _inner_radius(rho, valid, saturated, image, good):
    """The radius inside which the central beam (saturated or not) dominates."""
    r_sat = float(rho[saturated].max()) if saturated.any() else 0.0
    # the unscattered beam: where the pattern is above half its maximum near the centre
    near = rho < 0.1 * rho.max()
    r_beam = 0.0
    if near.any():
        inner = image[near & good]
        if inner.size:
            top = np.percentile(inner, 99.9)
            bright = near & good & (image > 0.5 * top)
            if bright.any():
                r_beam = float(rho[bright].max())
    return max(r_sat, r_beam, 3.0) * 1.5 + 4


def _outer_radius(rho, good):
    """The largest radius at which at least half the circle lies on valid pixels."""
    rbin = rho[good].astype(int)
    counts = np.bincount(rbin)
    circle = 2 * math.pi * (np.arange(len(counts)) + 0.5)
    ok = counts >= 0.5 * circle
    last = np.flatnonzero(ok)
    return float(last[-1]) if len(last) else float(rho.max())


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
