"""The check's pass that follows the beam: the plain pass, the descan fitted to its disk
centres, and, when the beam walks further than the tolerance, a second pass on frames
with the walk undone.

- The centre of mass is always taken relative to the fitted moving beam ``c(s)``: the
  fit is subtracted from each frame's CoM (exact, no resampling; :func:`follow_beam`).
- The aperture images follow the beam only when the walk exceeds the tolerance: then a
  second pass runs on frames resampled by the shared compensation kernel
  (:class:`~napari_emcal.engine.descan.DescanCompensated`, bilinear), with BF and ADF
  apertures redrawn around the disk found in compensated frames (a walking disk blurs
  the plain sum into a larger one). The disk centres that pass measures in compensated
  frames show how far the disk still walks, and with the first fit give the final descan
  (the first pass's fixed disk window can pull the centres of a far-walking disk).
  Below the tolerance one pass is enough: the report says how much the fixed apertures
  lose (:func:`~napari_emcal.dataset_check.report.walk_effects`).

Pure computation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace

import numpy as np

from ..errors import CalibrationFailedError, InvalidDataError
from .analysis import BeamDisk, PassResult, analyse, estimate_beam, fit_beam_walk, follow_beam
from .masks import beam_masks

__all__ = ["check_pass"]


def check_pass(
    data,
    *,
    beam: BeamDisk | None,
    masks: Mapping[str, np.ndarray] | None = None,
    adf: tuple[float, float] | None = (1.2, 0.0),
    max_count: float | None = None,
    scan_rotation: float = 0.0,
    flip_y: bool = False,
    descan_tolerance_px: float = 2.0,
    progress: Callable[[float], object] | None = None,
    executor: str | None = None,
    source=None,
) -> PassResult:
    """One pass over ``data`` (two when the beam walks beyond the tolerance) whose CoM,
    and then aperture images, follow the beam.

    Parameters
    ----------
    data : array_like (scan_y, scan_x, det_y, det_x)
        Read for the disk estimate of the second pass (a few frames).
    beam : BeamDisk or None
        The disk (its window gives the per-frame centres); None: no disk, no descan.
    masks : mapping, optional
        The apertures: with ``adf``, BF and ADF are (re)drawn from the disk, these are
        added as they are (drawn apertures keep their place on the detector).
    adf : (inner, outer) or None
        ADF radii in disk radii (:func:`~napari_emcal.dataset_check.masks.beam_masks`);
        None: no BF and ADF from the disk.
    max_count, scan_rotation, flip_y, executor
        As for :func:`~napari_emcal.dataset_check.analysis.analyse`.
    descan_tolerance_px : float
        The walk across the scan (px) beyond which the apertures follow the beam.
    progress : callable, optional
        Fraction done; the first pass counts for half.
    source : optional
        What the passes read instead of ``data`` (a path for a cluster's workers).

    Returns
    -------
    PassResult
        ``descan`` set and ``com_follows_beam`` true when the disk centres gave a fit;
        ``images_follow_beam`` when the second pass ran.
    """
    drawn = dict(masks or {})

    def apertures(disk):
        own = beam_masks(np.shape(data)[2:], disk, *adf) if adf is not None else {}
        return {**own, **drawn}

    def part(start, share):
        if progress is None:
            return None
        return lambda fraction: progress(start + share * fraction)

    common = dict(max_count=max_count, scan_rotation=scan_rotation, flip_y=flip_y)
    target = data if source is None else source
    first = analyse(
        target,
        masks=apertures(beam),
        beam=beam,
        executor=executor,
        progress=part(0.0, 0.5),
        **common,
    )
    result = first
    if first.disk_cy is not None:
        try:
            descan = fit_beam_walk(first.disk_cy, first.disk_cx)
        except CalibrationFailedError:
            descan = None  # the report fits again and says why not
        if descan is not None and descan.exceeds(descan_tolerance_px):
            result, descan = _second_pass(
                first, descan, data, target, apertures, beam, executor, part
            )
        if descan is not None:
            result = follow_beam(result, descan)
    if progress is not None:
        progress(1.0)
    return result


def _second_pass(first, descan, data, target, apertures, beam, executor, part):
    """The pass on compensated frames; the final descan from both passes' centres."""
    try:
        disk = estimate_beam(data, descan=descan.matrix)
    except (CalibrationFailedError, InvalidDataError):
        disk = BeamDisk(*descan.centre, beam.radius)
    second = analyse(
        target,
        masks=apertures(disk),
        beam=disk,
        scan_rotation=0.0,  # its CoM is not used: the first pass's, exact, is
        descan=descan.matrix,
        executor=executor,
        progress=part(0.5, 0.5),
    )
    # the centres measured in compensated frames, put back where the descan moved them:
    # the fit of these is the first fit corrected by what the compensated disk still walks
    back = np.asarray(descan.shift_map)
    try:
        refined = fit_beam_walk(second.disk_cy + back[0], second.disk_cx + back[1])
    except CalibrationFailedError:
        refined = descan  # too few disks in the compensated frames: the first fit stands
    still = refined.shift_map - back
    return replace(
        first,
        images=second.images,
        images_follow_beam=True,
        walk_after_compensation_px=float(np.hypot(*still).max()),
        followed_sum=second.aperture_sum,
        beam=disk,
        descan=None,
    ), refined
