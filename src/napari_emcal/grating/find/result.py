"""What the pixel-size finder found (:class:`PixelSizeResult`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["PixelSizeResult"]


@dataclass(frozen=True)
class PixelSizeResult:
    """What :func:`find_pixel_size` found. Lengths in image pixels unless named ``_nm``.

    When no lattice was found, ``found`` is False, ``message`` says why, and the
    measurements are None; the autocorrelation is still there to look at (and to place a
    marker in).
    """

    found: bool
    message: str
    mode: str
    #: Known periods of the specimen along the first and second direction (nm).
    spacing_nm: tuple[float, float]
    #: Pixel size (nm per pixel): known spacing / measured spacing, averaged over directions.
    pixel_size_nm: float | None
    #: Direction of the first lattice direction (degrees, see the module docstring); for
    #: square lattices within (-45, 45], for catalase (short axis) within (-90, 90].
    angle_deg: float | None
    #: Measured period along each direction (pixels).
    spacing_px: tuple[float, float] | None
    #: Intervals walked along each direction (the farthest peak's multiple of the period).
    intervals: tuple[int, int]
    #: Angle from the first direction to the second (degrees, 90 for a square lattice).
    angle_between_deg: float | None
    #: The finder's working reduction: image pixels per pixel of the binned image it worked
    #: on (not the camera's binning, which the image's metadata or the user gives).
    binning: int
    #: Fraction of the lattice points predicted in the autocorrelation where a peak was found.
    quality: float
    #: RMS distance of the found peaks from the fitted lattice (pixels).
    residual_px: float | None
    #: The two fitted lattice vectors as rows (dy, dx) in pixels.
    lattice_vectors: np.ndarray | None
    #: Normalised autocorrelation of the binned image (1 at zero lag).
    autocorrelation: np.ndarray = field(repr=False)
    #: Pixel of zero lag in ``autocorrelation``.
    origin: tuple[int, int] = (0, 0)
    #: Lags (dy, dx) in image pixels of the peaks used: the starting peak first.
    peaks: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)), repr=False)
    #: For each of ``peaks``: 0 first direction, 1 second direction, 2 elsewhere.
    peak_series: np.ndarray = field(default_factory=lambda: np.zeros(0, int), repr=False)
    #: Lag (dy, dx) in image pixels of the starting peak.
    start_peak: tuple[float, float] | None = None
    #: Standard error of ``pixel_size_nm`` (nm) and of ``angle_deg`` (degrees).
    pixel_size_sigma_nm: float | None = None
    angle_sigma_deg: float | None = None
    #: Pixel size along the first and the second lattice direction (nm).
    pixel_sizes_nm: tuple[float, float] | None = None
    #: How much larger the larger of the two is (%): a distorted or stretched scan.
    anisotropy_percent: float | None = None
    #: The pixel size the file records (nm), and how much the measured one differs (%).
    recorded_pixel_size_nm: float | None = None
    calibration_difference_percent: float | None = None
    #: Alternatives rejected, anisotropy and calibration remarks, in words.
    notes: tuple[str, ...] = ()

    def autocorrelation_pixel(self, lag) -> np.ndarray:
        """Pixel (y, x) of ``autocorrelation`` at a lag given in image pixels."""
        return np.asarray(lag, dtype=float) / self.binning + np.asarray(self.origin)

    def summary_lines(self) -> list[str]:
        """A found lattice in words, one line per aspect, as the widget and the CLI show it."""
        a, b = self.spacing_px
        pa, pb = self.pixel_sizes_nm
        lines = [
            f"pixel size  {self.pixel_size_nm:.5g} ± {self.pixel_size_sigma_nm:.2g} nm/px, "
            f"grid angle {self.angle_deg:.3f} ± {self.angle_sigma_deg:.2g}°",
            f"per direction {pa:.5g} / {pb:.5g} nm: anisotropy {self.anisotropy_percent:.2f} %"
            + ("  ⚠ over 1 %" if self.anisotropy_percent > 1.0 else ""),
            f"spacing {a:.3f} / {b:.3f} px over {self.intervals[0]} / {self.intervals[1]} "
            f"intervals, {self.angle_between_deg:.2f}° apart; worked at 1/{self.binning} size; "
            f"{self.quality:.0%} of lattice peaks found",
        ]
        distortion = self.distortion()
        if distortion is not None:
            lines.append(
                f"stretch {distortion.distortion_percent:.2f} % along {distortion.angle_deg:.1f}°"
                + (
                    f": MotionCor2 {distortion.motioncor2_argument()}"
                    if distortion.significant
                    else " (within noise: no correction)"
                )
            )
        if self.recorded_pixel_size_nm:
            lines.append(
                f"the file says {self.recorded_pixel_size_nm:.5g} nm/px: the lattice gives "
                f"{self.calibration_difference_percent:+.2f} %"
            )
        return lines

    def history_values(self) -> tuple[dict, dict]:
        """(values, standard errors) kept in the calibration history."""
        return (
            {"pixel_size_nm": self.pixel_size_nm, "angle_deg": self.angle_deg},
            {"pixel_size_nm": self.pixel_size_sigma_nm, "angle_deg": self.angle_sigma_deg},
        )

    def distortion(self):
        """The :class:`~napari_emcal.grating.distortion.MagnificationDistortion` of the
        image (MotionCor2's ``-Mag`` triple), or None without a lattice."""
        from ..distortion import distortion_of_result

        if not self.found or self.lattice_vectors is None:
            return None
        return distortion_of_result(
            {
                "lattice_vectors_px": self.lattice_vectors,
                "spacing_nm": self.spacing_nm,
                "pixel_size_nm": self.pixel_size_nm,
                "pixel_size_sigma_nm": self.pixel_size_sigma_nm,
            }
        )

    def to_dict(self) -> dict:
        """The measurements as plain JSON-able values (no images)."""
        distortion = self.distortion()
        return {
            "found": self.found,
            "message": self.message,
            "mode": self.mode,
            "spacing_nm": list(self.spacing_nm),
            "pixel_size_nm": self.pixel_size_nm,
            "angle_deg": self.angle_deg,
            "spacing_px": None if self.spacing_px is None else list(self.spacing_px),
            "intervals": list(self.intervals),
            "angle_between_deg": self.angle_between_deg,
            "working_reduction": self.binning,
            "quality": self.quality,
            "residual_px": self.residual_px,
            "start_peak": None if self.start_peak is None else list(self.start_peak),
            "pixel_size_sigma_nm": self.pixel_size_sigma_nm,
            "angle_sigma_deg": self.angle_sigma_deg,
            "pixel_sizes_nm": None if self.pixel_sizes_nm is None else list(self.pixel_sizes_nm),
            "anisotropy_percent": self.anisotropy_percent,
            "recorded_pixel_size_nm": self.recorded_pixel_size_nm,
            "calibration_difference_percent": self.calibration_difference_percent,
            "notes": list(self.notes),
            "lattice_vectors_px": None
            if self.lattice_vectors is None
            else np.asarray(self.lattice_vectors).tolist(),
            "distortion": None if distortion is None else distortion.to_dict(),
        }
