"""Whether the beam's walk across the detector (descan) matters for each analysis the
check judges, after the compensation the check applies (:mod:`.follow`).

Pure computation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..engine.descan import Descan

__all__ = ["WalkEffect", "descan_lines", "walk_effects", "walk_sigma"]


#: The walk matters for virtual imaging when it moves more than this fraction of the
#: bright-field disk's area out of the BF aperture (a 1 % ramp across the BF image).
WALK_AREA_FRACTION = 0.01
#: It matters for the CoM when the ramp the fit may leave (its 1σ uncertainty at the scan
#: corners; across the scan a ramp's RMS is that over √3) reaches this fraction of the
#: CoM signal (RMS about its mean): then it visibly changes the field. With counting
#: noise alone the ratio is √(2/frames); a specimen's smooth deflection of the disk
#: makes it larger (the overfocus sample: 29 %, the real FPD recording: 16 %), and the
#: report gives it either way.
WALK_COM_FRACTION = 0.5
#: Strain and ptychography fit disk positions to a fraction of a pixel: a walk beyond this
#: (px) must be taken out (the exported origin maps or LiberTEM regression do).
WALK_DISK_PX = 0.5


@dataclass(frozen=True)
class WalkEffect:
    """Whether the beam's walk across the detector matters for one analysis.

    Attributes
    ----------
    compensated : bool
        Whether the check's own result for this analysis follows the beam.
    walk_px : float
        The walk left for this analysis, detector pixels: the farthest the beam is from
        where the analysis assumes it (after compensation where it applies).
    compared_with : str
        What ``walk_px`` is measured against, in words.
    matters : bool
    text : str
        One sentence for the report.
    """

    compensated: bool
    walk_px: float
    compared_with: str
    matters: bool
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "compensated": self.compensated,
            "walk_px": self.walk_px,
            "compared_with": self.compared_with,
            "matters": self.matters,
            "text": self.text,
        }


def _disk_area_left(radius: float, offset: float) -> float:
    """Fraction of a disk's area outside an equal disk whose centre is ``offset`` away."""
    if offset <= 0:
        return 0.0
    if offset >= 2 * radius:
        return 1.0
    overlap = 2 * radius**2 * math.acos(offset / (2 * radius)) - offset / 2 * math.sqrt(
        4 * radius**2 - offset**2
    )
    return 1.0 - overlap / (math.pi * radius**2)


def walk_sigma(descan: Descan, scan_shape) -> float | None:
    """The 1σ uncertainty (px, vector length) of the fitted walk ``D (s − s_c)`` at the
    scan corners, where it is largest; None without standard errors."""
    if descan.matrix_sigma is None:
        return None
    ny, nx = scan_shape
    reach = np.array([(ny - 1) / 2, (nx - 1) / 2])
    return float(np.sqrt(((np.asarray(descan.matrix_sigma) * reach) ** 2).sum()))


def walk_effects(r) -> dict[str, WalkEffect]:
    """How much the beam's walk matters for each analysis, from a
    :class:`~napari_emcal.dataset_check.report.DatasetReport` ``r`` (empty without a
    descan fit).

    Virtual imaging: the walk left for the apertures (fixed ones: the fitted walk; ones
    that follow the beam: what the disk still walks in the compensated frames) against
    the disk radius, as the share of the disk's area that leaves the BF aperture. CoM:
    the CoM is relative to the fitted beam, so what is left is the fit's uncertainty at
    the scan corners as a ramp against the CoM signal. Strain and ptychography run elsewhere:
    the walk against half a pixel, and what the exported origin maps leave.
    """
    d = r.descan
    if d is None or r.scan_shape is None:
        return {}
    walk = float(np.hypot(*d.shift_map).max())
    sigma = walk_sigma(d, r.scan_shape)
    one = sigma if sigma is not None else math.nan
    left = f"±{one:.3f} px (1σ)" if sigma is not None else "an unknown amount (no errors)"
    out = {}
    if r.beam is not None:
        radius = r.beam.radius
        follows = r.images_follow_beam
        remaining = (
            r.walk_after_compensation_px
            if follows and r.walk_after_compensation_px is not None
            else walk
        )
        lost = _disk_area_left(radius, remaining)
        how = (
            "apertures follow the beam (frames compensated): the disk still walks"
            if follows
            else "apertures are fixed: the disk walks"
        )
        # a walk within twice its own uncertainty is not established: the specimen's
        # deflection of the disk, not a descan, may have made it
        significant = sigma is None or remaining > 2 * one
        matters = lost > WALK_AREA_FRACTION and significant
        advice = (
            f" (a descan tolerance under {d.shift_across_scan:.2f} px makes them follow it)"
            if matters and not follows
            else ""
        )
        if lost > WALK_AREA_FRACTION and not significant:
            advice = f" if real; the fit leaves it uncertain by {left}"
        out["virtual imaging"] = WalkEffect(
            follows,
            remaining,
            f"the disk radius {radius:.2f} px",
            matters,
            f"{how} {remaining:.2f} px from the aperture centre, {lost:.1%} of its area "
            f"out of the BF aperture{advice}",
        )
    signal = r.com_signal_px
    if signal is not None and math.isfinite(signal) and signal > 0:
        if r.com_follows_beam:
            remaining = one
            how = (
                f"CoM taken from the fitted moving beam; the fit is uncertain by {left} at "
                "the scan corners"
            )
        else:
            remaining, how = walk, f"CoM taken from a fixed centre: the beam walks {walk:.2f} px"
        ratio = remaining / (math.sqrt(3) * signal) if math.isfinite(remaining) else math.inf
        out["CoM/DPC"] = WalkEffect(
            r.com_follows_beam,
            remaining,
            f"the CoM signal {signal:.3f} px RMS",
            not ratio <= WALK_COM_FRACTION,
            f"{how}: a ramp of {ratio:.0%} of the CoM signal ({signal:.3f} px RMS)",
        )
    for analysis in ("strain", "ptychography"):
        matters = walk > max(WALK_DISK_PX, 3 * one if sigma is not None else 0.0)
        out[analysis] = WalkEffect(
            False,
            walk,
            f"{WALK_DISK_PX:g} px",
            matters,
            f"the beam walks {walk:.2f} px from its place at the scan centre; the exported "
            f"origin maps (py4DSTEM) or regression (LiberTEM) leave {left}",
        )
    return out


def descan_lines(report) -> list[str]:
    """The report's descan fit and what its walk does to each analysis, as lines."""
    d = report.descan
    m, e = d.matrix, d.matrix_sigma

    def entry(name, i, j):
        error = f" ± {e[i][j]:.4f}" if e is not None else ""
        return f"{name} {m[i, j]:+.4f}{error}"

    sigma = walk_sigma(d, report.scan_shape) if report.scan_shape else None
    known = f" ± {2 * sigma:.2f} (1σ)" if sigma is not None else ""
    lines = [
        f"descan       {d.shift_across_scan:.2f}{known} px across the scan (tolerance "
        f"{report.descan_tolerance_px:g} px), fit residual {d.residual_px:.2f} px RMS "
        f"over {d.frames} frames",
        "  per scan px "
        + ", ".join(
            entry(name, i, j)
            for name, i, j in (
                ("dy/dsy", 0, 0),
                ("dy/dsx", 0, 1),
                ("dx/dsy", 1, 0),
                ("dx/dsx", 1, 1),
            )
        ),
    ]
    for analysis, effect in report.walk.items():
        flag = "matters" if effect.matters else "ok"
        lines.append(f"  walk, {analysis}: {flag} — {effect.text}")
    return lines
