"""Refinement: maximise the sharpness of ``shifted_sum`` (the pair-averaged correlation of
the regions' point images at the shifts ``M`` predicts) over the free rotation and
magnification, with Nelder-Mead."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy import optimize

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
#: The first simplex steps: 0.3° of rotation and 0.5 % of magnification.
ROTATION_STEP_DEG = 0.3
LOG_K_STEP = 0.5
#: Evaluations of one Nelder-Mead search at most, and about as many as progress expects.
MAX_EVALUATIONS = 200
EXPECTED_EVALUATIONS = 100


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
        cols = np.arange(cols.max() + 1)  # a contiguous block from q_x = 0
        cross, wx = cross[:, rows][:, :, cols], wx[rows][:, cols]
        self.qy, self.qx = self.qy[rows], self.qx[cols]
        self.weighted = np.ascontiguousarray(cross * wx, dtype=np.complex64)
        self.norm = float(np.sum(np.abs(cross) * wx))
        self.dd = regions.centroids[pairs[:, 1]] - regions.centroids[pairs[:, 0]]

    def __call__(self, matrix: np.ndarray) -> float:
        delta = self.dd @ np.asarray(matrix).T
        ey = np.exp(2j * np.pi * delta[:, :1] * self.qy[None, :]).astype(np.complex64)
        ex = np.exp(2j * np.pi * delta[:, 1:] * self.qx[None, :]).astype(np.complex64)
        rows = np.matmul(self.weighted, ex[:, :, None])[:, :, 0]  # BLAS, not einsum
        return float(np.real(np.sum(rows * ey)) / self.norm)


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

        def cost(x, coherence=coherence, params_at=params_at):
            params = params_at(x)
            value = coherence(params.matrix)
            history.append((params, value))
            report(min(1.0, len(history) / EXPECTED_EVALUATIONS), params)
            return -value

        x0 = []
        if "scan_rotation" in names:
            x0.append(current.scan_rotation)
        if "overfocus" in names:
            x0.append(LOG_K_SCALE * math.log(abs(current.magnification)))
        if not x0:
            score = coherence(current.matrix)
            history.append((current, score))
            break
        # the estimate is closer than the first steps
        simplex = [x0] + [
            [
                v + (ROTATION_STEP_DEG if names[i] == "scan_rotation" else LOG_K_STEP) * (i == j)
                for i, v in enumerate(x0)
            ]
            for j in range(len(x0))
        ]
        result = optimize.minimize(
            cost,
            x0,
            method="Nelder-Mead",
            options={
                "initial_simplex": simplex,
                "xatol": 1e-3,
                "fatol": 1e-8,
                "maxfev": MAX_EVALUATIONS,
            },
        )
        current, score = params_at(result.x), -float(result.fun)
    return current.replace(scan_rotation=wrap_angle(current.scan_rotation)), score
