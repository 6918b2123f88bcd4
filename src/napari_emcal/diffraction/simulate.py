"""Simulated diffraction patterns of known geometry: the ground truth of the tests, the
benchmark and the sample.

A polycrystalline ring pattern (kinematic ring intensities of a standard), an amorphous
halo, a single crystal's spots, pure noise or a featureless image, on a detector with an
off-centre beam, elliptical distortion at any angle, Poisson noise, texture, a diffuse
background, a saturated central beam and a beam stop.

Geometry (the same as :mod:`.calibrate` fits): a ring of Bragg angle θ has the radius
``R = (L / p) tan 2θ`` detector pixels on an undistorted detector (camera length L,
detector pixel p); the distortion maps that circle onto an ellipse with semi-axes
``R √q`` along the major axis (at ``angle_deg`` from +x towards +y) and ``R / √q`` across
it, so the area, and the geometric-mean radius, are those of the undistorted ring.

Pure NumPy/SciPy.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

from ..errors import InvalidParameterError
from .standards import Standard, electron_wavelength, get_standard, zone_reflections

__all__ = ["PatternTruth", "corrected_radius", "ring_pattern", "spot_pattern", "halo_pattern"]


@dataclass(frozen=True)
class PatternTruth:
    """What a simulated pattern was made with (SI units, angles in degrees)."""

    camera_length: float
    detector_pixel_size: float
    beam_energy: float
    centre: tuple[float, float]
    axis_ratio: float
    angle_deg: float
    standard: str

    @property
    def wavelength(self) -> float:
        return electron_wavelength(self.beam_energy)

    @property
    def camera_length_px(self) -> float:
        """L / p: detector pixels per unit of tan 2θ."""
        return self.camera_length / self.detector_pixel_size

    def to_dict(self) -> dict:
        return asdict(self)


def corrected_radius(yy, xx, centre, axis_ratio: float, angle_deg: float):
    """The undistorted radius (px) and azimuth (rad, from +x towards +y) of detector
    points ``(yy, xx)`` for a beam at ``centre`` = (cy, cx) and the elliptical distortion
    (``axis_ratio`` >= 1, major axis at ``angle_deg``)."""
    dy = np.asarray(yy, float) - centre[0]
    dx = np.asarray(xx, float) - centre[1]
    a = math.radians(angle_deg)
    along = dx * math.cos(a) + dy * math.sin(a)
    across = -dx * math.sin(a) + dy * math.cos(a)
    q = float(axis_ratio)
    rho = np.sqrt(along**2 / q + across**2 * q)
    return rho, np.arctan2(dy, dx)


def _check(shape, axis_ratio, camera_length, detector_pixel_size):
    ny, nx = (int(s) for s in shape)
    if ny < 32 or nx < 32:
        raise InvalidParameterError(f"detector shape {shape} is too small (at least 32 x 32)")
    if not (1.0 <= axis_ratio < 1.5):
        raise InvalidParameterError(f"axis ratio {axis_ratio} must be in [1, 1.5)")
    if not (camera_length > 0 and detector_pixel_size > 0):
        raise InvalidParameterError("camera length and detector pixel size must be positive")
    return ny, nx


def _finish(image, rng, *, dose, centre, rho, saturation, beam_stop, beam_stop_angle_deg):
    """Central beam, beam stop, Poisson noise and saturation."""
    ny, nx = image.shape
    if beam_stop:
        yy, xx = np.mgrid[0:ny, 0:nx].astype(float)
        a = math.radians(beam_stop_angle_deg)
        dy, dx = yy - centre[0], xx - centre[1]
        along = dx * math.cos(a) + dy * math.sin(a)
        across = np.abs(-dx * math.sin(a) + dy * math.cos(a))
        disk = np.hypot(dy, dx) < beam_stop
        arm = (along > 0) & (across < beam_stop * 0.45)
        stop = ndimage.gaussian_filter((disk | arm).astype(float), 0.7)
        image = image * (1 - 0.98 * stop)
    if dose is not None:
        image = rng.poisson(np.clip(image, 0, None) * dose).astype(float)
    if saturation is not None:
        image = np.minimum(image, saturation)
    return image.astype(np.float32)


def ring_pattern(
    shape: tuple[int, int] = (512, 512),
    *,
    standard: str | Standard = "Au",
    camera_length: float = 0.15,
    detector_pixel_size: float = 15e-6,
    beam_energy: float = 200e3,
    centre: tuple[float, float] | None = None,
    axis_ratio: float = 1.0,
    angle_deg: float = 0.0,
    ring_width_px: float = 1.5,
    dose: float | None = 50.0,
    texture: float = 0.2,
    background: float = 1.0,
    central_beam: float = 50.0,
    saturation: float | None = None,
    beam_stop: float = 0.0,
    beam_stop_angle_deg: float = 30.0,
    seed: int | None = 0,
) -> tuple[np.ndarray, PatternTruth]:
    """A polycrystalline ring pattern of ``standard``.

    Parameters
    ----------
    shape : (ny, nx)
        Detector pixels.
    standard : str or Standard
        The polycrystal (a built-in name, or any :class:`~.standards.Standard`, e.g. a bcc
        metal to test a refusal).
    camera_length, detector_pixel_size : float
        Metres.
    beam_energy : float
        eV.
    centre : (cy, cx) or None
        Beam centre (px); None for the detector's centre.
    axis_ratio, angle_deg : float
        Elliptical distortion: major/minor axis (>= 1) and the major axis's direction
        (degrees from +x towards +y).
    ring_width_px : float
        Gaussian standard deviation of a ring across it (px): grain size and the optics.
    dose : float or None
        Counts per unit of the strongest ring's peak; None for a noise-free image.
    texture : float
        Azimuthal modulation of each ring's intensity (0 none; 0.2: ±20 %), with a random
        phase per ring.
    background : float
        Diffuse background at the centre relative to the strongest ring's peak (it falls
        off as a Lorentzian of a quarter of the detector's width).
    central_beam : float
        Peak of the unscattered beam relative to the strongest ring's peak.
    saturation : float or None
        Counts at which the detector saturates (clips), or None.
    beam_stop : float
        Radius (px) of a beam stop over the centre, with an arm to the edge; 0 for none.
    beam_stop_angle_deg : float
        Direction of the beam stop's arm.
    seed : int or None
        Noise, texture phases.

    Returns
    -------
    image : ndarray of float32
    truth : PatternTruth
    """
    ny, nx = _check(shape, axis_ratio, camera_length, detector_pixel_size)
    std = get_standard(standard)
    rng = np.random.default_rng(seed)
    if centre is None:
        centre = ((ny - 1) / 2, (nx - 1) / 2)
    wavelength = electron_wavelength(beam_energy)
    l_px = camera_length / detector_pixel_size
    yy, xx = np.mgrid[0:ny, 0:nx].astype(float)
    rho, azimuth = corrected_radius(yy, xx, centre, axis_ratio, angle_deg)
    rho_max = float(rho.max()) + 4 * ring_width_px
    # d at the largest radius: tan 2θ = rho/L_px
    theta_max = 0.5 * math.atan(rho_max / l_px)
    d_min = wavelength / (2 * math.sin(theta_max))
    image = np.zeros((ny, nx))
    for ring in std.reflections(d_min=max(d_min, 0.3e-10)):
        theta = math.asin(wavelength / (2 * ring.d_spacing))
        radius = l_px * math.tan(2 * theta)
        near = np.abs(rho - radius) < 6 * ring_width_px
        if not near.any():
            continue
        modulation = 1.0
        if texture:
            phase = rng.uniform(0, 2 * math.pi)
            modulation = 1 + texture * np.cos(2 * azimuth[near] + phase)
        image[near] += (
            ring.intensity * modulation * np.exp(-0.5 * ((rho[near] - radius) / ring_width_px) ** 2)
        )
    scale = max(ny, nx) / 4
    image += background / (1 + (rho / scale) ** 2)
    if central_beam:
        image += central_beam * np.exp(-0.5 * (rho / max(2.0, 0.01 * max(ny, nx))) ** 2)
    image = _finish(
        image,
        rng,
        dose=dose,
        centre=centre,
        rho=rho,
        saturation=saturation,
        beam_stop=beam_stop,
        beam_stop_angle_deg=beam_stop_angle_deg,
    )
    truth = PatternTruth(
        camera_length,
        detector_pixel_size,
        beam_energy,
        (float(centre[0]), float(centre[1])),
        float(axis_ratio),
        float(angle_deg % 180.0),
        std.name,
    )
    return image, truth


def halo_pattern(
    shape=(512, 512), *, radii_px=(90.0, 170.0), width_fraction=0.12, dose=50.0, seed=0
) -> np.ndarray:
    """An amorphous film: broad halos (relative width ``width_fraction`` of the radius)
    over a diffuse background and a central beam, with Poisson noise."""
    ny, nx = (int(s) for s in shape)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:ny, 0:nx].astype(float)
    r = np.hypot(yy - ny / 2, xx - nx / 2)
    image = 0.5 / (1 + (r / (max(ny, nx) / 4)) ** 2) + 20 * np.exp(-0.5 * (r / 4) ** 2)
    for k, radius in enumerate(radii_px):
        image += (0.8 / (k + 1)) * np.exp(-0.5 * ((r - radius) / (width_fraction * radius)) ** 2)
    return _finish(
        image,
        rng,
        dose=dose,
        centre=(ny / 2, nx / 2),
        rho=r,
        saturation=None,
        beam_stop=0,
        beam_stop_angle_deg=0,
    )


def spot_pattern(
    shape=(512, 512),
    *,
    standard: str | Standard = "Au",
    camera_length: float = 0.15,
    detector_pixel_size: float = 15e-6,
    beam_energy: float = 200e3,
    zone: str = "011",
    centre: tuple[float, float] | None = None,
    rotation_deg: float = 0.0,
    axis_ratio: float = 1.0,
    angle_deg: float = 0.0,
    spot_width_px: float = 1.5,
    dose: float | None = 50.0,
    seed: int | None = 0,
) -> np.ndarray:
    """A single crystal of a cubic ``standard`` along a zone of
    :data:`~.standards.ZONES`: Bragg spots (the zone's allowed reflections, kinematic
    |F|²) instead of rings, rotated in-plane by ``rotation_deg`` and distorted as
    :func:`ring_pattern` distorts rings."""
    ny, nx = (int(s) for s in shape)
    _check(shape, axis_ratio, camera_length, detector_pixel_size)
    std = get_standard(standard)
    rng = np.random.default_rng(seed)
    wavelength = electron_wavelength(beam_energy)
    l_px = camera_length / detector_pixel_size
    if centre is None:
        centre = ((ny - 1) / 2, (nx - 1) / 2)
    cy, cx = centre
    g_max = 2 * math.sin(0.5 * math.atan(np.hypot(ny, nx) / l_px)) / wavelength
    rot = math.radians(rotation_deg)
    a = math.radians(angle_deg)
    q = math.sqrt(axis_ratio)
    yy, xx = np.mgrid[0:ny, 0:nx].astype(float)
    r = np.hypot(yy - cy, xx - cx)
    image = 0.3 / (1 + (r / (max(ny, nx) / 4)) ** 2) + 30 * np.exp(-0.5 * (r / 3) ** 2)
    for _, _, (g1, g2), intensity in zone_reflections(std, zone, g_max):
        g = math.hypot(g1, g2)
        radius = l_px * math.tan(2 * math.asin(wavelength * g / 2))
        ux, uy = g1 / g, g2 / g
        ux, uy = ux * math.cos(rot) - uy * math.sin(rot), ux * math.sin(rot) + uy * math.cos(rot)
        along = (ux * math.cos(a) + uy * math.sin(a)) * radius * q
        across = (-ux * math.sin(a) + uy * math.cos(a)) * radius / q
        sx = cx + along * math.cos(a) - across * math.sin(a)
        sy = cy + along * math.sin(a) + across * math.cos(a)
        if not (-3 <= sy < ny + 3 and -3 <= sx < nx + 3):
            continue
        near = (np.abs(yy - sy) < 5 * spot_width_px) & (np.abs(xx - sx) < 5 * spot_width_px)
        image[near] += intensity * np.exp(
            -0.5 * ((yy[near] - sy) ** 2 + (xx[near] - sx) ** 2) / spot_width_px**2
        )
    image /= image[r > 10].max()
    return _finish(
        image,
        rng,
        dose=dose,
        centre=centre,
        rho=None,
        saturation=None,
        beam_stop=0,
        beam_stop_angle_deg=0,
    )
