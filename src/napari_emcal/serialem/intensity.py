"""Beam intensity and shutter dead time from series whose intensity or exposure varies.

- Beam intensity (SerialEM's *Calibrate Beam Intensity*): with no specimen in the beam,
  the current is proportional to the counts per unbinned pixel per second,
  ``mean / (binning² · exposure)``; SerialEM's ``BeamIntensityTable`` lists ``current
  intensity`` pairs and interpolates intensity against log(current). Here a local
  quadratic ``intensity = a + b·L + c·L²``, ``L = ln(current)``, is fitted with standard
  errors from the residuals, to say how well the points follow it.
- Shutter dead time (``CalibCameraTiming::CalibrateDeadTime``): the mean counts grow
  linearly with the exposure time after a dead time, ``counts = rate · (t − t_dead)``; a
  line through (exposure, counts) gives ``t_dead = −intercept / slope`` and its standard
  error by propagation. It is a camera property (``ShutterDeadTime``).

Pure NumPy: no Qt, no napari.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import CalibrationFailedError, InvalidDataError
from .series import Record

__all__ = ["BeamIntensity", "DeadTime", "beam_intensity", "dead_time"]


@dataclass
class BeamIntensity:
    """Currents (counts per unbinned px per s) against SerialEM's intensity values."""

    intensities: np.ndarray
    currents: np.ndarray
    coefficients: np.ndarray  # intensity = c0 + c1·L + c2·L², L = ln(current)
    sigma: np.ndarray
    residual_rms: float
    records: list[int]
    notes: list[str] = field(default_factory=list)

    def intensity_for(self, current: float) -> float:
        """The intensity the fit gives for ``current`` (counts/unbinned px/s)."""
        log = math.log(current)
        return float(self.coefficients @ [1.0, log, log * log])

    def to_dict(self) -> dict:
        return {
            "values": {
                "intensity": {"value": self.intensities.tolist(), "unit": ""},
                "current": {"value": self.currents.tolist(), "unit": "counts/px/s"},
                "fit": {
                    "value": self.coefficients.tolist(),
                    "sigma": self.sigma.tolist(),
                    "unit": "",
                    "meaning": "intensity = c0 + c1*ln(current) + c2*ln(current)^2",
                },
                "residual_rms": {"value": self.residual_rms, "unit": ""},
            },
            "notes": list(self.notes),
        }


@dataclass
class DeadTime:
    """Mean counts against exposure time and the dead time the line gives."""

    exposures_s: np.ndarray
    counts: np.ndarray
    rate: float  # counts per s
    intercept: float  # counts
    dead_time_s: float
    dead_time_sigma_s: float
    records: list[int]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "values": {
                "dead_time": {
                    "value": self.dead_time_s,
                    "unit": "s",
                    "sigma": self.dead_time_sigma_s,
                },
                "rate": {"value": self.rate, "unit": "counts/s"},
                "exposure": {"value": self.exposures_s.tolist(), "unit": "s"},
                "counts": {"value": self.counts.tolist(), "unit": "counts"},
            },
            "notes": list(self.notes),
        }


def _one_binning(records: list[Record]) -> None:
    if len({r.binning for r in records}) > 1 or len({r.camera for r in records}) > 1:
        raise InvalidDataError("the records mix cameras or binnings: measure one at a time")


def _counts(record: Record) -> float:
    counts = record.counts_mean()
    if not math.isfinite(counts):
        raise InvalidDataError(f"record {record.index}: its mean counts are not finite")
    return counts


def beam_intensity(records: list[Record]) -> BeamIntensity:
    """Fit intensity against log(current) for records at different intensities.

    Raises
    ------
    InvalidDataError
        Fewer than three records, missing exposure or intensity.
    CalibrationFailedError
        Fewer than three different intensities, or no counts (a blank beam).
    """
    if len(records) < 3:
        raise InvalidDataError(
            f"{len(records)} record(s): a beam-intensity calibration needs at least three "
            "intensities"
        )
    _one_binning(records)
    missing = [r.index for r in records if r.intensity is None or not r.exposure_s]
    if missing:
        raise InvalidDataError(f"record(s) {missing} record no Intensity or ExposureTime")
    intensities = np.array([r.intensity for r in records], dtype=float)
    if len(np.unique(np.round(intensities, 9))) < 3:
        raise CalibrationFailedError(
            "the intensity takes fewer than three values: nothing to fit against"
        )
    binning = float(records[0].binning or 1.0)
    notes = [] if records[0].binning else ["Binning is not recorded: 1 is assumed"]
    currents = np.array(
        [_counts(r) / (binning**2 * float(r.exposure_s)) for r in records], dtype=float
    )
    if np.any(currents <= 0):
        raise CalibrationFailedError(
            "some images hold no counts (a blanked or absent beam): no current to calibrate"
        )
    order = np.argsort(intensities)
    intensities, currents = intensities[order], currents[order]
    log = np.log(currents)
    design = np.column_stack([np.ones_like(log), log, log**2])
    coefficients, *_ = np.linalg.lstsq(design, intensities, rcond=None)
    residual = intensities - design @ coefficients
    dof = len(log) - 3
    variance = float(residual @ residual) / dof if dof > 0 else float("nan")
    sigma = np.sqrt(np.diag(np.linalg.pinv(design.T @ design)) * variance)
    if dof <= 0:
        notes.append("three points: the quadratic passes through them; no uncertainty")
    return BeamIntensity(
        intensities,
        currents,
        coefficients,
        sigma,
        float(np.sqrt(np.mean(residual**2))),
        [records[i].index for i in order],
        notes,
    )


def dead_time(records: list[Record]) -> DeadTime:
    """Shutter dead time from records at different exposure times (same beam).

    Raises
    ------
    InvalidDataError
        Fewer than three records, missing exposure times.
    CalibrationFailedError
        Fewer than three exposure times, or counts that do not grow with exposure.
    """
    if len(records) < 3:
        raise InvalidDataError(
            f"{len(records)} record(s): a dead-time calibration needs at least three exposure times"
        )
    _one_binning(records)
    missing = [r.index for r in records if r.exposure_s is None]
    if missing:
        raise InvalidDataError(f"record(s) {missing} record no ExposureTime")
    exposure = np.array([r.exposure_s for r in records], dtype=float)
    if len(np.unique(exposure)) < 3:
        raise CalibrationFailedError("fewer than three exposure times: no line to fit")
    counts = np.array([_counts(r) for r in records], dtype=float)
    design = np.column_stack([exposure, np.ones_like(exposure)])
    (rate, intercept), *_ = np.linalg.lstsq(design, counts, rcond=None)
    if rate <= 0:
        raise CalibrationFailedError(
            "the counts do not grow with the exposure time: is the beam on the camera?"
        )
    residual = counts - design @ [rate, intercept]
    dof = len(counts) - 2
    variance = float(residual @ residual) / dof
    cov = np.linalg.inv(design.T @ design) * variance
    t_dead = -intercept / rate
    grad = np.array([intercept / rate**2, -1.0 / rate])
    sigma = float(np.sqrt(max(grad @ cov @ grad, 0.0)))
    notes = []
    if t_dead < 0:
        notes.append(
            f"the line crosses zero counts at {t_dead * 1e3:.2f} ms, before the exposure "
            "starts: SerialEM's advice is a ShutterDeadTime of 0 (or none)"
        )
    return DeadTime(
        exposure,
        counts,
        float(rate),
        float(intercept),
        float(t_dead),
        sigma,
        [r.index for r in records],
        notes,
    )
