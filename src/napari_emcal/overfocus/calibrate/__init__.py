"""Automatic calibration of the twin: direct estimate, then refinement to the sharpest image.

The physics used (docs/conventions.md): detector pixel ``d`` at scan position ``s`` sees the
specimen at ``t = s + M (d − c)`` with ``M = k · R(θ) · F``. So the *point image* of a
detector region (the sum of its pixels over the scan) is the specimen shifted by
``M (d_i − c)``: two regions' point images differ by the shift ``M (d_j − d_i)``. This is
the parallax of tilt-corrected bright-field STEM.

The stages, one module each: :mod:`.disk` (the bright-field disk), :mod:`.regions`
(detector regions' point images, plain or sharpened), :mod:`.parallax` (cross spectra,
spectral weights, peak shifts, the fit of ``M`` and :func:`decompose`), :mod:`.direct`
(the direct estimate's passes), :mod:`.refine` (the refinement), :mod:`.uncertainty` (the
bootstrap and standard errors).

1. **Direct estimate** (:func:`estimate`). Sum the detector into regions inside the
   bright-field disk, measure the shift between the point images of nearby regions by
   cross-correlation, and fit the 2x2 matrix ``M`` to all shifts by robust least squares.
   Each pair is windowed on its common specimen region (predicted by the previous fit),
   so the window does not pull the peaks towards zero shift, and each spatial frequency
   of the cross spectra is weighted by its signal-to-noise ratio, measured on the data
   (:func:`~.parallax._spectral_weights`): plain cross-correlation's strong low
   frequencies locate a shift poorly. A region's plain sum blurs its image over ``|k|``
   scan pixels per detector pixel of its side; once a first fit shows more than
   SHARPEN_BLUR_PX of blur, each pixel's image is placed at ``M (d − c_r)`` from its
   region's centroid before adding (:func:`~.regions._sharp_regions`, the tilt
   correction of tcBF within each region) and the fit is repeated on those sharp images
   (docs/science.md gives the precision each step gained). ``det M < 0`` means
   ``flip_y``; the rotation and ``|k|`` follow from the similarity part of ``M``. No start
   value of rotation or flip is needed. The beam centre is the centre of the disk.
2. **Refinement** (:func:`calibrate`). Maximise the sharpness of ``shifted_sum``, the sum
   of the point images shifted back by ``M (d_i − c)``. Its power is a constant plus the
   cross-correlations of all pairs at their predicted shifts; the refinement maximises
   the pair-averaged correlation coefficient, each evaluated at the exact, continuous
   shift from the cross spectrum (no interpolation, so no bias towards whole-pixel
   shifts as nearest-neighbour or bilinear sampling would give), by Newton's method on
   its exact gradient and Hessian in rotation and ``log k`` (a sum of complex exponentials
   of the shifts: a few evaluations), then once more with the windows re-centred on the
   optimum.
   What blur remains in a region's image (from its plain sum, or from the error of the
   ``M`` it was sharpened with) is symmetric about the region's centroid, which lowers
   the peak but does not move it.

Descan. When the beam walks on the detector (the twin's ``descan``), every stage reads the
frames with the walk undone (:class:`~napari_emcal.engine.descan.CompensatedData`): a
region's point image is then that of a fixed part of the beam, and the parallax measures
``M`` itself; without compensation it would measure ``(I − M D)⁻¹ M`` and bias rotation and
overfocus. With ``"descan"`` free, the walk is measured first: the disk's centre in every
frame (of a regular subset), from its edge so the specimen's shadow inside it does not
move it, fitted by a plane with standard errors
(:func:`~napari_emcal.engine.disk_centres.measure_descan`); :func:`estimate_descan` does that
alone, on data where the rest cannot be calibrated (a focused probe).

``shifted_sum`` does not depend on the beam centre except for a translation, so the
centre comes from the bright-field disk, not from the sharpness. ``k`` and a rotation by
180° cannot be told apart by the data (over- and underfocus look alike), so the sign of
the start's overfocus is kept.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from ...engine import validate_4d
from ...engine.descan import Descan, compensated_data
from ...engine.disk_centres import measure_descan
from ...errors import CalibrationFailedError, InvalidParameterError
from ..twin import TwinParams
from .direct import DirectFit, check_direct_fit, direct_fit
from .disk import _central_crop, _find_disk
from .parallax import decompose, overfocus_for_magnification
from .refine import refine
from .regions import _region_size, _regions, _sharp_regions
from .uncertainty import Bootstrap, bootstrap
from .uncertainty import uncertainty as standard_errors

__all__ = [
    "FREE_PARAMETERS",
    "CalibrationResult",
    "calibrate",
    "decompose",
    "estimate",
    "estimate_descan",
    "history_values",
    "overfocus_for_magnification",
]

#: Parameters :func:`calibrate` can determine.
FREE_PARAMETERS = ("scan_rotation", "flip_y", "overfocus", "cy", "cx", "descan")
#: A floor for the descan fit's systematic error (px/px), added in quadrature: the
#: specimen's shadow crossing the disk's edge shifts the measured centres coherently over
#: much of the scan, which neither the residuals nor a block jackknife fully see (up to
#: 0.0034 px/px, 4 of their σ, on 48x48 simulations of detailed specimens with descan up to
#: 0.15 px/px, six random cases; tests/overfocus/test_calibrate_descan.py has three).
SYSTEMATIC_DESCAN_PX_PER_PX = 0.0012
#: Scan positions needed along each axis to measure the parallax between detector regions.
MIN_SCAN = 8
#: Regions whose images a first fit shows blurred over more scan pixels than this are
#: sharpened (:func:`~.regions._sharp_regions`) and fitted again.
SHARPEN_BLUR_PX = 1.0
#: The regions are read again, smaller, when the first fit's |k| times this asks for
#: smaller regions than the start's did.
FIRST_FIT_MARGIN = 1.2
#: Below this pair-averaged correlation at the optimum the data do not determine the twin.
MIN_SCORE = 0.2
#: Progress: reading the regions takes up to READ_DONE, the direct estimate up to
#: DIRECT_DONE (SHARPENED_DONE after its first fit, where sharpening starts), the
#: refinement the rest.
READ_DONE, SHARPENED_DONE, DIRECT_DONE = 0.7, 0.75, 0.8

Progress = Callable[[float, "TwinParams | None"], object]


@dataclass
class CalibrationResult:
    """Outcome of :func:`calibrate`.

    Attributes
    ----------
    params : TwinParams
        The calibrated parameters.
    score : float
        Mean spectral coherence of ``shifted_sum`` at ``params`` (0..1, higher is sharper;
        about ``1 / n_regions`` for data without a common specimen).
    n_evaluations : int
        Number of sharpness evaluations.
    history : list of (TwinParams, float)
        Every evaluated parameter set and its score, in order.
    estimate : TwinParams
        The direct estimate the refinement started from.
    start : TwinParams
        The start given.
    details : dict
        Diagnostics: the fitted matrix, inlier count and residual of the direct
        estimate, detector binnings used, region counts, time taken (s).
    """

    params: TwinParams
    score: float
    n_evaluations: int
    history: list[tuple[TwinParams, float]]
    estimate: TwinParams
    start: TwinParams
    details: dict = field(default_factory=dict)
    #: Standard errors of the free parameters, in their API units (degrees for
    #: ``scan_rotation``, m for ``overfocus``, detector pixels for ``cy``/``cx``, a 2x2
    #: array in px/px for ``descan``), from a bootstrap over detector regions (the descan's
    #: from its plane fit).
    uncertainty: dict = field(default_factory=dict)
    #: How clearly the data choose the handedness: |det M| in standard errors of the
    #: bootstrap (the other handedness flips its sign). None when ``flip_y`` was not free.
    flip_margin: float | None = None


def _check_free(free) -> frozenset[str]:
    free = frozenset([free] if isinstance(free, str) else free)
    unknown = free - set(FREE_PARAMETERS)
    if unknown:
        raise InvalidParameterError(
            f"Cannot calibrate {', '.join(sorted(unknown))}; free parameters are chosen "
            f"from {', '.join(FREE_PARAMETERS)}."
        )
    return free


class _Calibration:
    """The data, the disk and the regions the stages share, and their diagnostics."""

    def __init__(self, data, start: TwinParams, free: frozenset[str], progress):
        (sy, sx), _ = validate_4d(data)
        if not isinstance(start, TwinParams):
            raise InvalidParameterError(f"start must be a TwinParams, got {type(start).__name__}.")
        self.start, self.free, self.progress = start, free, progress
        self.t0 = time.perf_counter()
        self.descan_fit: Descan | None = None
        descan = start.descan
        if "descan" in free:
            self.descan_fit = estimate_descan(data)
            descan = self.descan_fit.matrix
        # every stage reads frames with the beam's walk undone (free or known)
        self.data = data = compensated_data(data, descan)
        self.disk = _find_disk(data)
        if min(sy, sx) < MIN_SCAN:
            raise CalibrationFailedError(
                f"The scan has only {sy} x {sx} positions: at least {MIN_SCAN} x {MIN_SCAN} are "
                "needed to measure the parallax between detector regions."
            )
        scan_shape = _central_crop(data).shape[:2]
        size = _region_size(self.disk, start, scan_shape)
        self.regions = _regions(
            data, self.disk, size, progress=lambda f: self.report(READ_DONE * f, None)
        )
        self.scan_shape = self.regions.images.shape[1:]
        self.details: dict = {"region_size_px": size, "regions": len(self.regions.images)}
        if self.descan_fit is not None:
            self.details.update(
                descan=self.descan_fit.matrix.tolist(),
                descan_residual_px=self.descan_fit.residual_px,
                descan_frames=self.descan_fit.frames,
            )
        self.bootstrap: Bootstrap | None = None

    def report(self, fraction: float, params: TwinParams | None) -> None:
        if self.progress is not None:
            self.progress(min(1.0, fraction), params)

    @property
    def overfocus_sign(self) -> float:
        return 1.0 if self.start.overfocus > 0 else -1.0

    # the twin <-> matrix, honouring which parameters are free
    def params_for(self, matrix: np.ndarray) -> TwinParams:
        k, theta, flip = decompose(
            matrix, self.overfocus_sign, None if "flip_y" in self.free else self.start.flip_y
        )
        changes = {"flip_y": flip}
        if "scan_rotation" in self.free:
            changes["scan_rotation"] = theta
        if "overfocus" in self.free:
            changes["overfocus"] = overfocus_for_magnification(k, self.start)
        # the centre at the scan centre: from the descan's plane fit of the disk's edge
        # when it was measured, else the compensated disk's centre
        centre = self.disk.centre if self.descan_fit is None else self.descan_fit.centre
        if "cy" in self.free:
            changes["cy"] = float(centre[0])
        if "cx" in self.free:
            changes["cx"] = float(centre[1])
        if self.descan_fit is not None:
            changes["descan"] = self.descan_fit.matrix
        return self.start.replace(**changes)

    def _fit(self, span, matrix=None, sharpen_at=None) -> DirectFit:
        """A direct fit on the current regions, progress reported within ``span``."""

        def report(fraction):
            self.report(span[0] + (span[1] - span[0]) * fraction, None)

        fit = direct_fit(
            self.regions, self.scan_shape, matrix, sharpen_at=sharpen_at, report=report
        )
        self.details["region_blur_px"] = fit.blur_px
        return fit

    def _accept(self, fit: DirectFit) -> TwinParams:
        """The twin of a finished direct fit, once it is known to measure a parallax, with
        its bootstrap."""
        fraction = fit.inlier_fraction
        self.details["direct_passes"] = fit.passes
        self.details.update(
            matrix=fit.matrix.tolist(),
            pairs=int(len(fit.pairs)),
            inlier_fraction=fraction,
            rms_residual_px=fit.rms_px if fraction else None,
        )
        self.details["largest_shift_px"] = check_direct_fit(fit, self.regions)
        self.bootstrap = bootstrap(fit, len(self.regions.images), self.overfocus_sign)
        return self.params_for(fit.matrix)

    def direct(self) -> TwinParams:
        """Fit ``M`` to the shifts between neighbouring regions' point images; where the
        regions' images are blurred over more than SHARPEN_BLUR_PX scan pixels, fit again
        on their sharpened images (:func:`~.regions._sharp_regions`)."""
        fit = self._fit((READ_DONE, SHARPENED_DONE), sharpen_at=SHARPEN_BLUR_PX)
        if not fit.blurred:
            params = self._accept(fit)
            self.details["sharpened"] = False
            return params
        self.details["sharpened"] = True
        # a start whose |k| was too low gave regions too large for the fitted one (which
        # stopped early, and may be up to FIRST_FIT_MARGIN short)
        k = decompose(fit.matrix)[0] * self.overfocus_sign * FIRST_FIT_MARGIN
        fitted = self.start.replace(overfocus=overfocus_for_magnification(k, self.start))
        size = _region_size(self.disk, fitted, self.scan_shape)
        if size < self.regions.size:
            self.regions = _regions(
                self.data, self.disk, size, progress=lambda f: self.report(SHARPENED_DONE, None)
            )
            self.details.update(region_size_px=size, regions=len(self.regions.images))
        self.regions = _sharp_regions(
            self.data, self.regions, fit.matrix, lambda f: self.report(SHARPENED_DONE, None)
        )
        return self._accept(self._fit((SHARPENED_DONE, DIRECT_DONE), fit.matrix))


def estimate_descan(data) -> Descan:
    """The descan alone: the bright-field disk's centre in every frame (of a regular
    subset of at most 64 per scan axis), from its edge, fitted by a plane.

    Needs no twin and works on any data with a bright-field disk, a focused probe
    included. ``Descan.matrix`` is the twin's ``descan`` (px/px), ``Descan.centre`` its
    ``(cy, cx)``, with standard errors ``matrix_sigma``/``centre_sigma`` that allow for
    errors shared by neighbouring frames (the specimen's shadow crossing the edge).

    Raises
    ------
    InvalidDataError
        Not 4D data, or frames with NaN or infinite values.
    CalibrationFailedError
        No bright-field disk, or too few frames where its edge is found.
    """
    validate_4d(data)
    disk = _find_disk(data)
    # where the disk can be: the mean frame's disk (widened by the walk) and a margin
    margin = max(3, int(round(0.5 * disk.radius)))
    window = ndimage.binary_dilation(disk.mask, iterations=margin)
    fit = measure_descan(data, disk.mean_frame, window)
    if fit.matrix_sigma is None:
        return fit
    return dataclasses.replace(
        fit, matrix_sigma=np.hypot(fit.matrix_sigma, SYSTEMATIC_DESCAN_PX_PER_PX)
    )


def estimate(
    data,
    start: TwinParams,
    *,
    free=("scan_rotation", "flip_y", "overfocus"),
    progress: Progress | None = None,
) -> TwinParams:
    """Direct estimate of rotation, handedness and overfocus from parallax (no search).

    Needs no start value of ``scan_rotation`` or ``flip_y``; from ``start`` it takes the
    lengths that stay fixed (scan step, camera length, detector pixel size), the sign of
    the overfocus, and any parameter not in ``free``. See :func:`calibrate`.

    Raises
    ------
    CalibrationFailedError
        When the data cannot determine the parameters.
    """
    return _Calibration(data, start, _check_free(free), progress).direct()


def calibrate(
    data,
    start: TwinParams,
    *,
    free=("scan_rotation", "flip_y", "overfocus"),
    progress: Progress | None = None,
) -> CalibrationResult:
    """Find the twin parameters that make ``shifted_sum`` sharpest.

    Parameters
    ----------
    data : array_like, shape (scan_y, scan_x, det_y, det_x)
        NumPy, memory-mapped or Dask data. One pass over (at most the central
        128 x 128 scan positions of) it, plus 64 frames to find the bright-field disk.
    start : TwinParams
        Known lengths (scan step, camera length, detector pixel size) and the starting
        point. Only the sign of ``start.overfocus`` matters (over- and underfocus cannot
        be told apart from the data: they differ by a 180° rotation).
    free : sequence of str
        Parameters to determine, from ``"scan_rotation"``, ``"flip_y"``, ``"overfocus"``,
        ``"cy"``, ``"cx"``, ``"descan"``. The beam centre comes from the bright-field
        disk (the sharpness of ``shifted_sum`` does not depend on it); the descan from the
        disk's centre in every frame (:func:`estimate_descan`). The others keep the
        values of ``start``; a known ``start.descan`` is honoured (frames compensated).
    progress : callable, optional
        ``progress(fraction, params)``, called often: ``fraction`` done (0..1] and the
        best parameters so far (None while reading). It may raise
        :class:`~napari_emcal.errors.Cancelled` to stop.

    Returns
    -------
    CalibrationResult

    Raises
    ------
    CalibrationFailedError
        When the data cannot determine the parameters (featureless specimen, noise, no
        bright-field disk); the message says why.
    InvalidParameterError
        For an unknown free parameter or a ``start`` that is not a TwinParams.
    """
    run = _Calibration(data, start, _check_free(free), progress)
    first = run.direct()
    run.report(0.8, first)
    history: list[tuple[TwinParams, float]] = []
    params, score = refine(
        run.regions,
        run.scan_shape,
        first,
        run.free,
        history,
        lambda fraction, params: run.report(0.8 + 0.2 * fraction, params),
        run.details,
    )
    if not score >= MIN_SCORE:
        raise CalibrationFailedError(
            f"The sharpest twin found still leaves the images of different detector regions "
            f"unrelated (correlation {score:.2f} < {MIN_SCORE}): the data do not determine "
            "the parameters."
        )
    run.details["seconds"] = time.perf_counter() - run.t0
    uncertainty, margin = standard_errors(params, first, run.bootstrap, run.free, run.disk.radius)
    if run.descan_fit is not None:
        _descan_uncertainty(uncertainty, run.descan_fit, run.free, params)
    run.report(1.0, params)
    return CalibrationResult(
        params,
        score,
        len(history),
        history,
        first,
        start,
        run.details,
        uncertainty=uncertainty,
        flip_margin=margin,
    )


def _descan_uncertainty(uncertainty: dict, fit: Descan, free, params: TwinParams) -> None:
    """The descan's standard errors (and the centre's, measured with it) from its fit, and
    what they add to the rotation's and the overfocus's.

    Frames compensated with a descan off by ``δD`` keep a walk ``−δD (s − s_c)``, so the
    parallax measures ``(I + M δD)⁻¹ M ≈ (I − M δD) M``: a relative change ``B = −M δD``
    whose antisymmetric part turns the rotation by ``(B₀₁ − B₁₀) / 2`` rad and whose trace
    scales ``k`` by ``(B₀₀ + B₁₁) / 2``. Each entry's error is propagated to first order
    and added in quadrature (the bootstrap over regions cannot see it: every region shares
    the same compensation).
    """
    if fit.centre_sigma is not None:
        for name, centre_sigma in zip(("cy", "cx"), fit.centre_sigma):
            if name in free:
                uncertainty[name] = max(uncertainty.get(name, 0.0), float(centre_sigma))
    if fit.matrix_sigma is None:
        return
    sigma = np.asarray(fit.matrix_sigma, dtype=float)
    uncertainty["descan"] = sigma
    m = params.matrix
    turn = scale = 0.0
    for a in range(2):
        for b in range(2):
            unit = np.zeros((2, 2))
            unit[a, b] = 1.0
            change = -m @ unit
            turn += (sigma[a, b] * (change[0, 1] - change[1, 0]) / 2) ** 2
            scale += (sigma[a, b] * (change[0, 0] + change[1, 1]) / 2) ** 2
    if "scan_rotation" in uncertainty:
        uncertainty["scan_rotation"] = math.hypot(
            uncertainty["scan_rotation"], math.degrees(math.sqrt(turn))
        )
    if "overfocus" in uncertainty:
        f, length = params.overfocus, params.camera_length
        # k ∝ f / (f + L): dk/k = (df/f) · L / (f + L)
        uncertainty["overfocus"] = math.hypot(
            uncertainty["overfocus"], abs(f * (f + length) / length) * math.sqrt(scale)
        )
    if fit.centre_sigma is not None:
        for name, sigma in zip(("cy", "cx"), fit.centre_sigma):
            if name in free:
                uncertainty[name] = max(uncertainty.get(name, 0.0), float(sigma))


def history_values(result) -> tuple[dict, dict]:
    """A calibration's values and standard errors as the history keeps them."""
    p, sigma = result.params, result.uncertainty
    values = {
        "scan_rotation_deg": p.scan_rotation,
        "flip_y": p.flip_y,
        "overfocus_m": p.overfocus,
        "cy_px": p.cy,
        "cx_px": p.cx,
    }
    names = {
        "scan_rotation": "scan_rotation_deg",
        "overfocus": "overfocus_m",
        "cy": "cy_px",
        "cx": "cx_px",
    }
    return values, {names[k]: v for k, v in sigma.items() if k in names}
