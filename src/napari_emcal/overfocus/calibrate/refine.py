"""Refinement: maximise the sharpness of ``shifted_sum`` (the pair-averaged correlation of
the regions' point images at the shifts ``M`` predicts) over the free rotation and
magnification, by Newton's method on the score's exact derivatives."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ...geometry import wrap_angle
from ..twin import TwinParams
from .direct import FAR_REACH
from .parallax import (
    MAX_PAIRS,
    NoiseSpectrum,
    _cross_spectra,
    _pairs,
    _spectral_weights,
    _usable,
    overfocus_for_magnification,
)
from .regions import _Regions

#: Frequencies whose weight is below this fraction of the largest are left out of the
#: evaluations (they cost time and change nothing).
WEIGHT_CUT = 1e-2
#: The magnification is searched as LOG_K_SCALE · ln|k| (a step of 1 is 1 %).
LOG_K_SCALE = 100.0
#: The largest step of one Newton iteration: 1.2° of rotation and 2 % of magnification
#: (the direct estimate is much closer; the score's peak is about a scan pixel wide over
#: the longest baselines, a few degrees and per cent).
ROTATION_STEP_DEG = 1.2
LOG_K_STEP = 2.0
#: Converged when a step moves less than this (degrees, and LOG_K_SCALE · ln|k|: 1e-6
#: of k): far below the standard errors.
STEP_TOLERANCE = 1e-4
#: Evaluations of one search at most, and about as many as progress expects.
MAX_EVALUATIONS = 40
EXPECTED_EVALUATIONS = 10


class _PairCoherence:
    """Sharpness of ``shifted_sum`` as a function of ``M``, from pairs of point images.

    The power of the shifted sum ``Σ_i P_i(s − M(d_i − c))`` is ``Σ_i |P_i|²`` (constant)
    plus ``2 Σ_{i<j}`` the cross-correlation of ``P_i`` and ``P_j`` at the shift
    ``M(d_j − d_i)``. This keeps the pairs whose images overlap well, windows each pair on
    its common specimen region, and evaluates each cross-correlation at the exact,
    continuous shift from the cross spectrum (band-limited interpolation: no bias towards
    whole-pixel shifts, unlike nearest-neighbour or bilinear resampling). Each frequency
    is weighted by its signal-to-noise ratio (:func:`_spectral_weights`), and those the
    weights all but drop are left out of the evaluations. The score is the weighted
    correlation coefficient averaged over pairs: 1 when all agree, about 0 for noise.

    Being a sum of complex exponentials of the shifts, the score has exact first and
    second derivatives with respect to ``M`` (:meth:`derivatives`), at little more than
    the cost of the score itself.
    """

    def __init__(self, regions: _Regions, pairs: np.ndarray, predicted: np.ndarray):
        sy, sx = regions.images.shape[1:]
        noise = NoiseSpectrum()
        cross = _cross_spectra(regions, pairs, predicted, noise)
        self.qy, self.qx = np.fft.fftfreq(sy), np.fft.rfftfreq(sx)
        # rfft: columns other than 0 and Nyquist stand for two frequencies
        wx = np.where((self.qx == 0) | (self.qx == 0.5), 1.0, 2.0)
        wx = wx * _spectral_weights(cross, noise, predicted, (sy, sx))
        # frequencies the weights all but drop cost time at every evaluation: cut them
        kept = wx > WEIGHT_CUT * wx.max()
        rows, cols = np.flatnonzero(kept.any(axis=1)), np.flatnonzero(kept.any(axis=0))
        width = cols.max() + 1  # a contiguous block from q_x = 0
        wx = wx[rows, :width].astype(np.float32)
        self.qy, self.qx = self.qy[rows], self.qx[:width]
        # one copy of the kept frequencies, weighted in place (the weights are >= 0)
        self.weighted = cross[:, rows, :width]
        self.weighted *= wx
        del cross
        self.norm = float(np.sum(np.abs(self.weighted), axis=0, dtype=np.float64).sum())
        self.dd = regions.centroids[pairs[:, 1]] - regions.centroids[pairs[:, 0]]

    def _sums(self, matrix: np.ndarray, order: int):
        """Per pair, ``Σ_q W e^{2πi q·δ}`` times the monomials of ``q`` up to ``order``:
        a dict keyed by the powers ``(a, b)`` of ``(q_y, q_x)``."""
        delta = self.dd @ np.asarray(matrix).T
        ey = np.exp(2j * np.pi * delta[:, :1] * self.qy[None, :]).astype(np.complex64)
        ex = np.exp(2j * np.pi * delta[:, 1:] * self.qx[None, :]).astype(np.complex64)
        qx, qy = self.qx.astype(np.float32), self.qy.astype(np.float32)
        sums = {}
        for b in range(order + 1):
            # a matrix-vector product per pair (BLAS; not einsum, nor several columns at
            # once, which numpy does without BLAS)
            rows = np.matmul(self.weighted, (ex * qx**b)[:, :, None])[:, :, 0] * ey
            for a in range(order + 1 - b):
                sums[a, b] = rows @ qy**a if a else rows.sum(axis=1)
        return sums

    def __call__(self, matrix: np.ndarray) -> float:
        return float(np.real(np.sum(self._sums(matrix, 0)[0, 0])) / self.norm)

    def derivatives(self, matrix, first, second):
        """The score at ``matrix``, its gradient and Hessian with respect to parameters
        ``x`` given ``first[i] = ∂M/∂x_i`` and ``second[i][j] = ∂²M/∂x_i∂x_j``."""
        s = self._sums(matrix, 2)
        two_pi = 2 * np.pi
        # ∂/∂δ of Re Σ W e^{2πi q·δ}, and the second derivatives, per pair
        grad = -two_pi * np.stack([s[1, 0].imag, s[0, 1].imag], axis=1).astype(np.float64)
        hyy, hxy, hxx = (
            -(two_pi**2) * s[key].real.astype(np.float64) for key in ((2, 0), (1, 1), (0, 2))
        )
        n = len(first)
        moved = [self.dd @ np.asarray(d).T for d in first]  # ∂δ/∂x_i, (pairs, 2)
        g = np.array([np.sum(grad * v) for v in moved]) / self.norm
        h = np.empty((n, n))
        for i in range(n):
            for j in range(i, n):
                vi, vj = moved[i], moved[j]
                curvature = np.sum(
                    hyy * vi[:, 0] * vj[:, 0]
                    + hxy * (vi[:, 0] * vj[:, 1] + vi[:, 1] * vj[:, 0])
                    + hxx * vi[:, 1] * vj[:, 1]
                )
                bend = np.sum(grad * (self.dd @ np.asarray(second[i][j]).T))
                h[i, j] = h[j, i] = (curvature + bend) / self.norm
        value = float(np.real(np.sum(s[0, 0])) / self.norm)
        return value, g, h


def _ascent_step(gradient: np.ndarray, hessian: np.ndarray) -> np.ndarray:
    """Newton's step towards the maximum; where the score is not concave there, the step
    of the Hessian with its eigenvalues made negative (an ascent direction)."""
    values, vectors = np.linalg.eigh(hessian)
    curvature = np.maximum(np.abs(values), 1e-12 * max(np.abs(values).max(), 1e-300))
    return vectors @ ((vectors.T @ gradient) / curvature)


def _newton(x, evaluate, limits):
    """The maximum of ``evaluate(x) -> (value, gradient, hessian)`` near ``x``: Newton steps
    of at most ``limits`` per parameter, halved while they lower the value, until a step
    would move less than STEP_TOLERANCE."""
    value, gradient, hessian = evaluate(x)
    evaluations = 1
    while evaluations < MAX_EVALUATIONS:
        step = _ascent_step(gradient, hessian)
        step *= min(1.0, float(np.min(limits / np.maximum(np.abs(step), 1e-300))))
        while evaluations < MAX_EVALUATIONS and not np.all(np.abs(step) < STEP_TOLERANCE):
            trial = evaluate(x + step)
            evaluations += 1
            if trial[0] >= value:
                break
            step = step / 2  # overshot: a shorter step the same way
        else:
            break  # converged: the next step would move less than the tolerance
        x, (value, gradient, hessian) = x + step, trial
    return x, value, gradient, hessian


def refine(
    regions: _Regions,
    scan_shape,
    estimate: TwinParams,
    free: frozenset[str],
    history: list,
    report: Callable[[float, TwinParams], object],
    details: dict,
) -> tuple[TwinParams, float]:
    """Maximise the pair coherence over the free rotation and magnification, from the
    direct ``estimate``; every evaluation is appended to ``history`` and reported
    (``report(fraction, params)``); ``details`` gets the pairs used."""
    names = [n for n in ("scan_rotation", "overfocus") if n in free]
    limits = np.array([ROTATION_STEP_DEG if n == "scan_rotation" else LOG_K_STEP for n in names])
    current = estimate
    grid, centroids = regions.grid, regions.centroids
    pairs = _pairs(grid, FAR_REACH)
    dd = centroids[pairs[:, 1]] - centroids[pairs[:, 0]]
    score = float("nan")
    for _round in range(2):  # the second round re-centres the windows on the optimum
        predicted = dd @ current.matrix.T
        ok = np.flatnonzero(_usable(pairs, predicted, scan_shape))
        if len(ok) > MAX_PAIRS:
            ok = np.sort(np.random.default_rng(0).choice(ok, MAX_PAIRS, replace=False))
        coherence = _PairCoherence(regions, pairs[ok], predicted[ok])
        details["refinement_pairs"] = int(len(ok))

        def params_at(x, current=current):
            changes = {}
            if "scan_rotation" in names:
                changes["scan_rotation"] = float(x[names.index("scan_rotation")])
            if "overfocus" in names:
                k = math.copysign(
                    math.exp(x[names.index("overfocus")] / LOG_K_SCALE), estimate.magnification
                )
                changes["overfocus"] = overfocus_for_magnification(k, estimate)
            return current.replace(**changes)

        def evaluate(x, coherence=coherence, params_at=params_at):
            params = params_at(x)
            matrix = params.matrix
            # M = ±e^{u / LOG_K_SCALE} R(θ) F: ∂M/∂θ is M turned by 90° (θ in degrees)
            turned = params.replace(scan_rotation=params.scan_rotation + 90.0).matrix
            first = {"scan_rotation": turned * math.radians(1.0), "overfocus": matrix / LOG_K_SCALE}
            second = {
                ("scan_rotation", "scan_rotation"): -matrix * math.radians(1.0) ** 2,
                ("scan_rotation", "overfocus"): first["scan_rotation"] / LOG_K_SCALE,
                ("overfocus", "scan_rotation"): first["scan_rotation"] / LOG_K_SCALE,
                ("overfocus", "overfocus"): matrix / LOG_K_SCALE**2,
            }
            value, gradient, hessian = coherence.derivatives(
                matrix, [first[a] for a in names], [[second[a, b] for b in names] for a in names]
            )
            history.append((params, value))
            report(min(1.0, len(history) / EXPECTED_EVALUATIONS), params)
            return value, gradient, hessian

        x = []
        if "scan_rotation" in names:
            x.append(current.scan_rotation)
        if "overfocus" in names:
            x.append(LOG_K_SCALE * math.log(abs(current.magnification)))
        if not x:
            score = coherence(current.matrix)
            history.append((current, score))
            break
        x, value, gradient, hessian = _newton(np.array(x), evaluate, limits)
        current, score = params_at(x), value
    return current.replace(scan_rotation=wrap_angle(current.scan_rotation)), score
