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

Geometry and conventions (the simulator's, :mod:`napari_emcal.diffraction.simulate`): the
camera length refers to the geometric-mean radius of the distorted rings (the distortion
keeps areas); the axis ratio is major/minor (>= 1); the angle is the major axis's direction
in degrees from +x towards +y (clockwise as napari shows an image), in [0, 180).

The stages live in :mod:`.centre` (steps 1-2), :mod:`.profile` (3), :mod:`.ellipse` (4),
:mod:`.assign` (5) and here (6); the result in :mod:`.result`.

Pure NumPy/SciPy.
"""

from __future__ import annotations

import math

import numpy as np

from ...errors import CalibrationFailedError, Cancelled, InvalidDataError, InvalidParameterError
from ..simulate import corrected_radius
from ..standards import Standard, electron_wavelength, get_standard
from .assign import _assign, _check_coverage, _has_spots
from .centre import (
    _beam_stop,
    _check_image,
    _inner_radius,
    _outer_radius,
    _point_symmetry_centre,
    _saturation_mask,
)
from .ellipse import N_SECTORS, _fit_ellipse, _sector_radii, _unpack
from .profile import _profile, _profile_peaks
from .result import DiffractionCalibration, RingFit

__all__ = ["DiffractionCalibration", "RingFit", "calibrate_camera_length"]

#: Relative systematic floor added to the camera length's standard error: what the
#: statistical error leaves out (the sector fits' small biases with close rings, the
#: simulated coverage in tests/diffraction/test_calibrate.py). The standard's own lattice
#: parameter is taken as exact (see the notes).
CAMERA_LENGTH_FLOOR = 2e-4


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
