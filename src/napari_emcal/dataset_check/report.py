"""Is a 4D STEM dataset fit for the intended analysis? Numbers and plain-language verdicts.

Pure computation on a :class:`~napari_emcal.dataset_check.analysis.PassResult`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..engine import validate_4d
from ..errors import CalibrationFailedError, InvalidDataError
from ..units import from_si
from .analysis import (
    BeamDisk,
    Descan,
    PassResult,
    estimate_beam,
    find_beam,
    fit_beam_walk,
)
from .com_rotation import ComRotation, com_rotation
from .follow import check_pass
from .walk import WalkEffect, descan_lines, walk_effects, walk_sigma

__all__ = [
    "ANALYSES",
    "DatasetReport",
    "check_pass",
    "dataset_report",
    "saturation_count",
]

ANALYSES = ("virtual imaging", "CoM/DPC", "strain", "ptychography")
#: Verdict levels, best first.
LEVELS = ("suitable", "caution", "not suitable")


def saturation_count(dtype, metadata_max: float | None = None) -> float | None:
    """The count at which pixels saturate: recorded in the file, else the integer dtype's
    maximum (None for floats, where nothing is known)."""
    if metadata_max:
        return float(metadata_max)
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.integer):
        return float(np.iinfo(dtype).max)
    return None


def saturation_with_source(dtype, typed: float | None, metadata: dict) -> tuple[float | None, str]:
    """The saturation count to use and where it came from: typed, the file's (its
    counter depth or saturation value), or the integer type's maximum."""
    if typed:
        return float(typed), "typed by the user"
    recorded = metadata.get("detector_max_count")
    if recorded:
        values = (metadata.get("instrument") or {}).get("values", {})
        source = values.get("saturation_count", {}).get("source") or "the file"
        return float(recorded), source
    count = saturation_count(dtype)
    if count is None:
        return None, "unknown: floating-point data and no count in the file"
    return count, f"the maximum of {np.dtype(dtype).name} (the file gives no counter depth)"


@dataclass
class DatasetReport:
    """Checks of a dataset, and a verdict per analysis.

    Attributes
    ----------
    beam : BeamDisk or None
        The bright-field disk found in the summed frames.
    saturated_fraction : float or None
        Fraction of all recorded pixels at the saturation count (None when unknown).
    saturated_frames : float or None
        Fraction of frames with at least one saturated pixel.
    edge_fraction : float or None
        Fraction of frames in which the disk reaches the detector edge.
    max_angle_mrad, disk_angle_mrad : float or None
        The largest scattering angle the detector records (from the beam centre to the
        farthest detector corner) and the disk's semi-angle, when camera length and
        detector pixel size are known.
    counts : dict
        Counts per frame: mean, std, min, max, and std/mean.
    descan : Descan or None
    descan_tolerance_px : float
    verdicts : dict of str to (level, list of reasons)
    """

    beam: BeamDisk | None
    saturated_fraction: float | None
    saturated_frames: float | None
    edge_fraction: float | None
    max_angle_mrad: float | None
    disk_angle_mrad: float | None
    counts: dict[str, float]
    descan: Descan | None
    descan_tolerance_px: float
    verdicts: dict[str, tuple[str, list[str]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: the scan (positions along y, x); None when not known
    scan_shape: tuple[int, int] | None = None
    #: the count taken as saturated, and where it came from
    saturation_count: float | None = None
    saturation_source: str = ""
    #: fraction of frames in which the bright-field disk is seen (None without a disk)
    beam_fraction: float | None = None
    #: frames holding NaN or infinite values, and the first of them (scan y, x)
    nonfinite_frames: int = 0
    first_nonfinite: tuple[int, int] | None = None
    #: the lowest count seen in integer detector data when it is negative, else None
    negative_min: float | None = None
    #: scan rotation and flip that make the CoM field curl-free (a second opinion)
    com_rotation: ComRotation | None = None
    #: whether the CoM is relative to the moving beam, and the aperture images too
    com_follows_beam: bool = False
    images_follow_beam: bool = False
    #: with images that follow the beam: how far the disk still walks (px)
    walk_after_compensation_px: float | None = None
    #: RMS of the (beam-relative) CoM field about its mean, detector pixels
    com_signal_px: float | None = None
    #: whether the walk matters, per analysis (:func:`walk_effects`)
    walk: dict[str, WalkEffect] = field(default_factory=dict)

    @property
    def descan_exceeds(self) -> bool:
        return self.descan is not None and self.descan.exceeds(self.descan_tolerance_px)

    def to_dict(self) -> dict[str, Any]:
        descan = None
        if self.descan is not None:
            d = self.descan
            sigma = walk_sigma(d, self.scan_shape) if self.scan_shape else None
            descan = {
                "convention": "c(s) = centre + px_per_scan_px @ (s - s_c), s_c the scan "
                "centre; rows (cy, cx), columns (sy, sx); detector px",
                "centre_px": list(d.centre),
                "centre_sigma_px": None if d.centre_sigma is None else list(d.centre_sigma),
                "origin_px": list(d.origin),
                "px_per_scan_px": d.matrix.tolist(),
                "px_per_scan_px_sigma": None
                if d.matrix_sigma is None
                else np.asarray(d.matrix_sigma).tolist(),
                "shift_across_scan_px": d.shift_across_scan,
                "walk_sigma_px": sigma,
                "residual_px": d.residual_px,
                "frames": d.frames,
                "tolerance_px": self.descan_tolerance_px,
                "exceeds_tolerance": self.descan_exceeds,
                "com_follows_beam": self.com_follows_beam,
                "images_follow_beam": self.images_follow_beam,
                "walk_after_compensation_px": self.walk_after_compensation_px,
                "com_signal_px": self.com_signal_px,
                "walk_effects": {k: v.to_dict() for k, v in self.walk.items()},
            }
        return {
            "beam": None
            if self.beam is None
            else {"cy": self.beam.cy, "cx": self.beam.cx, "radius": self.beam.radius},
            "saturated_fraction": self.saturated_fraction,
            "saturated_frames": self.saturated_frames,
            "saturation_count": self.saturation_count,
            "saturation_source": self.saturation_source,
            "edge_fraction": self.edge_fraction,
            "max_angle_mrad": self.max_angle_mrad,
            "disk_angle_mrad": self.disk_angle_mrad,
            "counts_per_frame": self.counts,
            "descan": descan,
            "verdicts": {k: {"verdict": v[0], "reasons": v[1]} for k, v in self.verdicts.items()},
            "com_rotation": None
            if self.com_rotation is None
            else {
                "scan_rotation_deg": self.com_rotation.scan_rotation,
                "scan_rotation_sigma_deg": self.com_rotation.scan_rotation_sigma,
                "modulo_deg": 180,
                "flip_y": self.com_rotation.flip_y,
                "flip_ratio": self.com_rotation.flip_ratio,
                "flip_certain": self.com_rotation.flip_certain,
            },
            "notes": self.notes,
        }

    def summary(self) -> str:
        """The report as lines of text."""
        lines = []
        if self.beam is not None:
            lines.append(
                f"beam centre  ({self.beam.cy:.2f}, {self.beam.cx:.2f}) px, disk "
                f"radius {self.beam.radius:.2f} px"
            )
        if self.saturated_fraction is not None:
            at = (
                f" (at {self.saturation_count:g} counts: {self.saturation_source})"
                if self.saturation_count is not None
                else ""
            )
            lines.append(
                f"saturated    {self.saturated_fraction:.3%} of pixels, in "
                f"{self.saturated_frames:.1%} of frames{at}"
            )
        else:
            lines.append("saturated    unknown (no saturation count for this data type)")
        if self.edge_fraction is not None:
            lines.append(f"disk at edge {self.edge_fraction:.1%} of frames")
        if self.max_angle_mrad is not None:
            lines.append(
                f"angles       up to {self.max_angle_mrad:.1f} mrad recorded; disk "
                f"semi-angle {self.disk_angle_mrad:.2f} mrad"
            )
        c = self.counts
        relative = (
            f" ({c['relative_std']:.1%})" if math.isfinite(c["relative_std"]) else " (mean <= 0)"
        )
        lines.append(
            f"counts/frame mean {c['mean']:.4g}, std {c['std']:.3g}{relative}, "
            f"min {c['min']:.4g}, max {c['max']:.4g}"
        )
        if self.descan is not None:
            lines.extend(descan_lines(self))
        if self.com_rotation is not None:
            lines.append(f"rotation     {self.com_rotation.summary()}")
        for analysis, (level, reasons) in self.verdicts.items():
            lines.append(
                f"{analysis + ':':<17}{level}" + (f" — {'; '.join(reasons)}" if reasons else "")
            )
        lines.extend(f"note: {n}" for n in self.notes)
        return "\n".join(lines)


def dataset_report(
    result: PassResult,
    *,
    camera_length: float | None = None,
    detector_pixel_size: float | None = None,
    descan_tolerance_px: float = 2.0,
) -> DatasetReport:
    """Checks and verdicts from one pass (:func:`~napari_emcal.dataset_check.analysis.analyse`).

    Parameters
    ----------
    result : PassResult
        With a beam given to the pass for the disk checks and the descan.
    camera_length, detector_pixel_size : float, optional
        Metres; both are needed for the angles.
    descan_tolerance_px : float
        Largest disk shift across the scan (detector pixels) that counts as centred.
    """
    notes: list[str] = []
    beam = result.beam
    # refined on all frames: those with the descan undone where the pass had them (a
    # walking disk blurs the plain sum, and the radius with it)
    summed = result.followed_sum if result.followed_sum is not None else result.aperture_sum
    try:
        beam = find_beam(summed)
    except CalibrationFailedError as exc:
        if beam is not None:
            notes.append(str(exc))
    except InvalidDataError:
        pass  # NaN or inf in the sum: the frames' own estimate stands (reported below)
    total = result.total
    finite = np.isfinite(total)
    nonfinite = int((~finite).sum())
    first_bad = tuple(int(v) for v in np.argwhere(~finite)[0]) if nonfinite else None
    if nonfinite:
        notes.append(
            f"{nonfinite} frames hold NaN or infinite values (first at scan position "
            f"{first_bad}): they are left out of the counts; replace them before any analysis"
        )
    good = total[finite] if finite.any() else np.zeros(1)
    counts = {
        "mean": float(np.mean(good)),
        "std": float(np.std(good)),
        "min": float(np.min(good)),
        "max": float(np.max(good)),
    }
    counts["relative_std"] = counts["std"] / counts["mean"] if counts["mean"] > 0 else math.nan
    beam_fraction = None
    if beam is not None and "BF" in result.images:
        bright = result.images["BF"]
        expected = float(np.nanmean(bright))
        beam_fraction = float(np.mean(bright >= 0.3 * expected)) if expected > 0 else 0.0
        if beam_fraction < 0.5:
            notes.append(
                f"the bright-field disk is seen in only {beam_fraction:.0%} of frames (beam "
                "blanked or off the detector for most of the scan)"
            )
    n_pixels = total.size * result.detector_shape[0] * result.detector_shape[1]
    saturated_fraction = saturated_frames = None
    if result.saturated is not None:
        saturated_fraction = float(result.saturated.sum() / n_pixels)
        saturated_frames = float((result.saturated > 0).mean())
    edge_fraction = None if result.touches_edge is None else float(result.touches_edge.mean())
    descan = result.descan
    if descan is None and result.disk_cy is not None:
        try:
            descan = fit_beam_walk(result.disk_cy, result.disk_cx)
        except CalibrationFailedError as exc:
            notes.append(str(exc))
    max_angle = disk_angle = None
    if camera_length and detector_pixel_size and beam is not None:
        ny, nx = result.detector_shape
        corners = np.array([[0, 0], [0, nx - 1], [ny - 1, 0], [ny - 1, nx - 1]], float)
        farthest = np.hypot(*(corners - [beam.cy, beam.cx]).T).max()
        max_angle = from_si(math.atan(farthest * detector_pixel_size / camera_length), "mrad")
        disk_angle = from_si(math.atan(beam.radius * detector_pixel_size / camera_length), "mrad")
    elif beam is not None:
        notes.append("camera length or detector pixel size unknown: angles not reported")
    report = DatasetReport(
        beam=beam,
        saturated_fraction=saturated_fraction,
        saturated_frames=saturated_frames,
        edge_fraction=edge_fraction,
        max_angle_mrad=max_angle,
        disk_angle_mrad=disk_angle,
        counts=counts,
        descan=descan,
        descan_tolerance_px=descan_tolerance_px,
        notes=notes,
        beam_fraction=beam_fraction,
        nonfinite_frames=nonfinite,
        first_nonfinite=first_bad,
        scan_shape=tuple(int(n) for n in np.shape(total)[:2]),
        com_follows_beam=result.com_follows_beam,
        images_follow_beam=result.images_follow_beam,
        walk_after_compensation_px=result.walk_after_compensation_px,
    )
    com = np.stack([result.com_y, result.com_x]).reshape(2, -1)
    com = com[:, np.isfinite(com).all(axis=0)]
    if com.shape[1] > 1:
        report.com_signal_px = float(np.sqrt(com.var(axis=1).sum()))
    report.walk = walk_effects(report)
    report.verdicts = _verdicts(report)
    if report.beam is not None and not nonfinite and result.rotation is not None:
        # the field in detector directions: undo the turn the pass applied
        inverse = np.linalg.inv(result.rotation)
        dy = inverse[0, 0] * result.com_y + inverse[0, 1] * result.com_x
        dx = inverse[1, 0] * result.com_y + inverse[1, 1] * result.com_x
        try:
            report.com_rotation = com_rotation(dy, dx)
        except (CalibrationFailedError, InvalidDataError) as exc:
            report.notes.append(f"no scan rotation from the CoM field: {exc}")
    return report


#: The smallest scan (positions per side) each analysis can use: an image needs more than
#: one pixel, the CoM field's rotation and curl need neighbours, ptychography overlapping
#: positions.
MIN_SCAN = {"virtual imaging": 2, "CoM/DPC": 3, "strain": 2, "ptychography": 4}


def _verdicts(r: DatasetReport) -> dict[str, tuple[str, list[str]]]:
    """Which conditions each analysis needs, and how this dataset meets them."""

    def judge(conditions):
        level, reasons = 0, []
        for severity, failed, reason in conditions:
            if failed:
                level = max(level, severity)
                reasons.append(reason)
        return LEVELS[level], reasons

    sat = r.saturated_fraction
    unknown_sat = sat is None
    edge = r.edge_fraction
    no_disk = r.beam is None or (r.beam_fraction is not None and r.beam_fraction < 0.5)
    bad_values = r.nonfinite_frames > 0
    negative = r.negative_min is not None
    angle_ratio = (
        r.max_angle_mrad / r.disk_angle_mrad if r.max_angle_mrad and r.disk_angle_mrad else None
    )
    stable = r.counts["relative_std"]

    def walk(analysis):
        """The beam's walk matters for the analysis (:func:`walk_effects`)."""
        effect = r.walk.get(analysis)
        if effect is None:
            return (1, False, "")
        return (1, effect.matters, f"the beam's walk matters: {effect.text}")

    def too_small(analysis):
        """The scan is smaller than the analysis needs (MIN_SCAN positions per side)."""
        need = MIN_SCAN[analysis]
        small = r.scan_shape is not None and min(r.scan_shape) < need
        shape = " x ".join(map(str, r.scan_shape or ()))
        return (2, small, f"a {shape} scan is too small: at least {need} x {need} positions")

    verdicts = {
        "virtual imaging": judge(
            [
                too_small("virtual imaging"),
                (2, no_disk, "no bright-field disk found"),
                (2, bad_values, f"{r.nonfinite_frames} frames hold NaN or infinite values"),
                (
                    1,
                    edge is not None and edge > 0.05,
                    f"the disk reaches the detector edge in {edge or 0:.0%} of frames",
                ),
                (
                    1,
                    not unknown_sat and sat > 0.01,
                    f"{sat or 0:.1%} of pixels saturated: bright-field contrast is clipped",
                ),
                walk("virtual imaging"),
            ]
        ),
        "CoM/DPC": judge(
            [
                too_small("CoM/DPC"),
                (2, no_disk, "no bright-field disk found"),
                (2, bad_values, f"{r.nonfinite_frames} frames hold NaN or infinite values"),
                (
                    2,
                    negative,
                    f"negative counts (down to {r.negative_min or 0:g}) in integer data: "
                    "dark-subtracted or wrapped values",
                ),
                (
                    2,
                    edge is not None and edge > 0.01,
                    f"the disk is cut by the detector edge in {edge or 0:.0%} of frames",
                ),
                (
                    2,
                    not unknown_sat and sat > 1e-3,
                    f"{sat or 0:.2%} of pixels saturated: the disk's centre of mass is biased",
                ),
                walk("CoM/DPC"),
                (1, unknown_sat, "saturation unknown"),
            ]
        ),
        "strain": judge(
            [
                too_small("strain"),
                (2, no_disk, "no bright-field disk found"),
                (2, bad_values, f"{r.nonfinite_frames} frames hold NaN or infinite values"),
                (
                    1,
                    r.max_angle_mrad is None,
                    "angles unknown (camera length, detector pixel size)",
                ),
                (
                    2,
                    angle_ratio is not None and angle_ratio < 3,
                    f"the detector records only {angle_ratio or 0:.1f}x the disk's angle: too few "
                    "diffracted disks",
                ),
                (1, not unknown_sat and sat > 0.01, f"{sat or 0:.1%} of pixels saturated"),
                walk("strain"),
            ]
        ),
        "ptychography": judge(
            [
                too_small("ptychography"),
                (2, no_disk, "no bright-field disk found"),
                (2, bad_values, f"{r.nonfinite_frames} frames hold NaN or infinite values"),
                (
                    2,
                    negative,
                    f"negative counts (down to {r.negative_min or 0:g}): counting statistics "
                    "do not hold",
                ),
                (
                    2,
                    edge is not None and edge > 0.01,
                    "the bright-field disk is not wholly on the detector",
                ),
                (
                    2,
                    not unknown_sat and sat > 1e-4,
                    f"{sat or 0:.3%} of pixels saturated: counts must be linear",
                ),
                (1, unknown_sat, "saturation unknown"),
                (
                    1,
                    angle_ratio is not None and angle_ratio < 1.5,
                    "little is recorded outside the bright-field disk",
                ),
                walk("ptychography"),
                (
                    1,
                    stable is not None and stable > 0.1,
                    f"counts per frame vary by {stable:.0%}: unstable beam or thick specimen",
                ),
            ]
        ),
    }
    return verdicts


def check_dataset(
    data,
    metadata: dict | None = None,
    *,
    max_count: float | None = None,
    descan_tolerance_px: float = 2.0,
    scan_rotation: float = 0.0,
    flip_y: bool = False,
    progress=None,
    executor: str | None = None,
    source=None,
) -> tuple[PassResult, DatasetReport]:
    """Everything ``emcal check`` and the widget report, in one pass over the data (two
    when the beam walks beyond the tolerance).

    The disk is first estimated from 64 frames spread over the scan (read lazily), then one
    pass computes bright-field and annular dark-field images (the disk, and from 1.2 disk
    radii to the detector edge), the centre of mass, per-frame disk centres and saturation.
    The CoM follows the beam (the descan fit subtracted), and the apertures too when the
    walk exceeds ``descan_tolerance_px`` (:func:`~napari_emcal.dataset_check.follow.
    check_pass`).

    Parameters
    ----------
    data : array_like (scan_y, scan_x, det_y, det_x)
    metadata : dict, optional
        In the structure of :mod:`napari_emcal.io.readers`: ``camera_length``,
        ``detector_pixel_size``, ``detector_max_count`` are used when present.
    max_count : float, optional
        Saturation count; default from the metadata, else the integer dtype's maximum.
    executor : str, optional
        Where the pass runs (:mod:`napari_emcal.engine`).
    source : optional
        What the pass reads instead of ``data`` (e.g. the file path, for a cluster whose
        workers read it); ``data`` still gives the disk estimate.
    """
    metadata = metadata or {}
    (sy, sx), detector_shape = validate_4d(data)
    notes = []
    negative_min = None
    if np.issubdtype(data.dtype, np.signedinteger):
        picks = np.unique(np.linspace(0, sy * sx - 1, min(64, sy * sx)).astype(int))
        lowest = min(float(np.asarray(data[i // sx, i % sx]).min()) for i in picks)
        if lowest < 0:
            negative_min = lowest
            notes.append(
                f"negative counts (down to {lowest:g}) in {np.dtype(data.dtype).name} data: a "
                "counting detector records none; dark-subtracted or wrapped values"
            )
    try:
        beam = estimate_beam(data)
    except CalibrationFailedError as exc:
        beam = None
        notes.append(f"{exc}: no aperture images, disk checks or descan")
    count, count_source = saturation_with_source(data.dtype, max_count, metadata)
    result = check_pass(
        data,
        beam=beam,
        max_count=count,
        scan_rotation=scan_rotation,
        flip_y=flip_y,
        descan_tolerance_px=descan_tolerance_px,
        progress=progress,
        executor=executor,
        source=source,
    )
    pixel = metadata.get("detector_pixel_size")
    pixel = float(np.mean(pixel)) if pixel else None
    report = dataset_report(
        result,
        camera_length=metadata.get("camera_length"),
        detector_pixel_size=pixel,
        descan_tolerance_px=descan_tolerance_px,
    )
    report.notes[:0] = notes
    if negative_min is not None:
        report.negative_min = negative_min
        report.verdicts = _verdicts(report)
    report.saturation_count, report.saturation_source = count, count_source
    if beam is None and report.beam is not None:
        report.notes.append(
            "the disk was found only in the sum of all frames: run again with "
            "that beam for the disk checks"
        )
    return result, report
