"""The camera-length calibration's result: :class:`DiffractionCalibration` and the fitted
rings, :class:`RingFit`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..standards import electron_wavelength

__all__ = ["DiffractionCalibration", "RingFit"]


@dataclass(frozen=True)
class RingFit:
    """One ring as fitted: the reflection, its undistorted radius and residual.

    ``radius_px`` is the ring's undistorted radius fitted freely (px); ``residual_px`` is
    that minus the radius the camera length predicts; ``sectors`` the number of azimuthal
    sectors in which the ring was measured (of :data:`.ellipse.N_SECTORS`).
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

    def history_values(self) -> tuple[dict[str, float], dict[str, float]]:
        """(values, standard errors) as the calibration history keeps them."""
        values = {
            "camera_length_m": self.camera_length,
            "axis_ratio": self.axis_ratio,
            "ellipse_angle_deg": self.angle_deg,
        }
        sigmas = {
            "camera_length_m": self.camera_length_sigma,
            "axis_ratio": self.axis_ratio_sigma,
            "ellipse_angle_deg": self.angle_sigma_deg,
        }
        return values, sigmas

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
