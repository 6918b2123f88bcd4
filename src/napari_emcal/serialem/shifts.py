"""Image-shift, stage-shift and high-defocus image-shift matrices from a recorded series.

Each image is compared with the one before it by windowed cross-correlation (a Tukey
window, whose flat middle does not pull the peak towards zero; the cross-power spectrum
whitened and low-passed so that the peak is sharp; the peak refined to 1/50 px by an
upsampled DFT around it; :mod:`napari_emcal.serialem.correlate`). The sum of the steps
places every image relative to the first.

The peak is looked for near the shift the settings predict (a prior matrix, or else the
matrix most of the steps agree on among the few highest peaks of each correlation), so a
periodic specimen, whose correlation has a peak at every lattice vector, cannot move a
measurement to the wrong lattice peak. When several matrices explain the steps equally
well and no prior tells them apart, the series is refused.

Positions are fitted by least squares as ``position = M · (setting − first setting) +
drift(t)``, the drift a polynomial in time (or in record order) that the repeated
unshifted records determine; standard errors come from the residuals (with a floor of
:data:`SHIFT_FLOOR_PX` per step for the sub-pixel accuracy of the correlation).

Matrices are in unbinned pixels of the stored array per unit of the setting:
``[[dcol/dx, dcol/dy], [drow/dx, drow/dy]]``, the displacement of the image content
(docs/conventions.md); :mod:`napari_emcal.serialem.lines` turns them into SerialEM's
camera axes.

Pure NumPy/SciPy: no Qt, no napari.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import CalibrationFailedError, InvalidDataError, InvalidParameterError
from .correlate import (
    _check_image,
    _peaks,
    _refine,
    _refine_overlap,
    _Step,
    _steps,
    measure_shift,
)
from .series import Record

__all__ = [
    "SHIFT_FLOOR_PX",
    "ShiftFit",
    "measure_shift",
    "fit_shift_matrix",
    "image_shift_matrix",
    "stage_shift_matrix",
    "HighDefocusIS",
    "high_defocus_image_shift",
    "scale_rotation",
]

#: Accuracy of one correlation step (binned px) that no residual can claim to beat.
SHIFT_FLOOR_PX = 0.02
#: A correlation peak must stand this many noise levels (:func:`.correlate._noise`) above zero:
#: pure noise reaches 4-5 in images of 96² to 512² px, a specimen 10-40.
PEAK_SIGNIFICANCE = 7.0
#: Near a predicted shift (a disk of a few hundred pixels) noise reaches about 3.5 noise
#: levels: the median step must stand above this (a lattice's distant peaks are weak,
#: 4-8, but the prior has already chosen among them).
PEAK_NEAR_PREDICTION = 4.5


@dataclass
class ShiftFit:
    """A shift matrix fitted to a series.

    Attributes
    ----------
    matrix : ndarray (2, 2)
        Unbinned px of the stored array per unit of the setting:
        ``[[dcol/dx, dcol/dy], [drow/dx, drow/dy]]``.
    sigma : ndarray (2, 2)
        Standard errors of ``matrix``.
    setting : str
        ``"image_shift"`` or ``"stage"``.
    records : list of int
        The records used, in order.
    moves : ndarray (n, 2)
        Setting of each record relative to the first (x, y).
    positions : ndarray (n, 2)
        Measured position of each record relative to the first (col, row), unbinned px.
    predicted : ndarray (n, 2)
        ``matrix · moves + drift`` for each record.
    drift : ndarray (n, 2)
        The fitted drift at each record (col, row), unbinned px.
    residuals : ndarray (n,)
        Length of ``positions − predicted`` per record, unbinned px.
    peaks : ndarray (n,)
        Correlation peak height of each step (0 for the first record).
    binning : float
    drift_rate : float
        Largest drift speed between records (unbinned px per record or per second, see
        ``drift_axis``).
    drift_axis : str
        ``"s"`` (time stamps) or ``"record"`` (no usable time).
    notes : list of str
    """

    matrix: np.ndarray
    sigma: np.ndarray
    setting: str
    records: list[int]
    moves: np.ndarray
    positions: np.ndarray
    predicted: np.ndarray
    drift: np.ndarray
    residuals: np.ndarray
    peaks: np.ndarray
    binning: float
    drift_rate: float
    drift_axis: str
    notes: list[str] = field(default_factory=list)

    @property
    def norm(self) -> float:
        return float(np.linalg.norm(self.matrix))

    def to_dict(self) -> dict:
        """``{"values": {...}, "notes": [...]}`` with each value's unit."""
        unit = "px" if self.setting == "image_shift" else "px/um"
        return {
            "values": {
                "matrix": {
                    "value": self.matrix.tolist(),
                    "unit": unit,
                    "sigma": self.sigma.tolist(),
                    "meaning": "[[dcol/dx, dcol/dy], [drow/dx, drow/dy]]: unbinned px of the "
                    "stored array (columns and rows as stored) per "
                    + ("image-shift unit" if self.setting == "image_shift" else "µm of stage"),
                },
                "residual_rms": {
                    "value": float(np.sqrt(np.mean(self.residuals**2))),
                    "unit": "px",
                },
                "drift_rate": {
                    "value": self.drift_rate,
                    "unit": f"px/{self.drift_axis}",
                },
                "records": {"value": self.records, "unit": ""},
            },
            "notes": list(self.notes),
        }


# ---------------------------------------------------------------------------------------
# a series of steps


def _choose_matrix(steps: list[_Step], deltas: np.ndarray, prior, radius_of):
    """The binned-px matrix (rows: dy, dx per unit) most steps agree on.

    With a ``prior`` it is the prior. Else every pair of steps with independent moves and
    every pair of their candidate peaks proposes a matrix; a proposal scores the peak
    heights of the steps whose candidates lie within ``radius_of(prediction)`` of it.
    """
    if prior is not None:
        return np.asarray(prior, dtype=float), []
    moving = [k for k in range(len(steps)) if np.linalg.norm(deltas[k]) > 0]
    proposals = []
    for i in moving:
        for j in moving:
            if j <= i:
                continue
            pair = np.array([deltas[i], deltas[j]])
            if abs(np.linalg.det(pair)) < 1e-6 * np.linalg.norm(pair) ** 2:
                continue
            for ci in steps[i].candidates:
                for cj in steps[j].candidates:
                    shifts = np.array([ci[1:], cj[1:]])
                    # shifts = pair @ M.T  ->  M.T = inv(pair) @ shifts
                    proposals.append(np.linalg.solve(pair, shifts).T)
    if not proposals:
        raise CalibrationFailedError(
            "the moves of the series do not span two directions: a 2x2 matrix needs moves "
            "along both axes"
        )
    scores = []
    for matrix in proposals:
        score = 0.0
        for k, step in enumerate(steps):
            prediction = matrix @ deltas[k]
            radius = radius_of(prediction)
            near = [
                c[0]
                for c in step.candidates
                if math.hypot(c[1] - prediction[0], c[2] - prediction[1]) <= radius
            ]
            score += max(near, default=0.0) / step.norm
        scores.append(score)
    scores = np.asarray(scores)
    best = int(np.argmax(scores))
    # another proposal as good but far from the best: a periodic specimen's ambiguity
    rivals = [
        k
        for k in np.flatnonzero(scores >= 0.9 * scores[best])
        if np.linalg.norm((proposals[k] - proposals[best]) @ deltas[moving].T, axis=0).max()
        > 2 * max(radius_of(proposals[best] @ deltas[m]) for m in moving)
    ]
    if rivals:
        raise CalibrationFailedError(
            "the shifts are ambiguous: several matrices explain them equally well (a "
            "periodic specimen correlates as well at another lattice vector): give a prior "
            "matrix, e.g. the current calibration"
        )
    return proposals[best], []


def fit_shift_matrix(
    records: list[Record],
    setting: str = "image_shift",
    *,
    prior=None,
    search_radius: float | None = None,
) -> ShiftFit:
    """The matrix that maps a change of ``setting`` to the image displacement.

    Parameters
    ----------
    records : list of Record
        One group (same mag index, camera, binning), in acquisition order, with images.
    setting : {"image_shift", "stage"}
    prior : (2, 2) array, optional
        Expected matrix in the same units as the result; the peaks are only looked for
        near what it predicts.
    search_radius : float, optional
        How far (binned px) from the prediction a peak may be; default 4 px plus 10 % of
        the predicted step (25 % with a prior).

    Raises
    ------
    InvalidDataError
        Fewer than three records, images missing or of different shapes, settings missing.
    CalibrationFailedError
        No setting changes, blank images, ambiguous or unmeasurable shifts.
    """
    if setting not in ("image_shift", "stage"):
        raise InvalidParameterError(f"setting must be image_shift or stage, not {setting!r}")
    what = "image shift" if setting == "image_shift" else "stage position"
    key = "ImageShift" if setting == "image_shift" else "StagePosition"
    if len(records) < 2:
        raise InvalidDataError(
            f"a series of {len(records)} record: a shift needs at least two images "
            "(and three or more to remove drift)"
        )
    values = [r.image_shift if setting == "image_shift" else r.stage for r in records]
    if any(v is None for v in values):
        missing = [str(r.index) for r, v in zip(records, values, strict=True) if v is None]
        raise InvalidDataError(
            f"record(s) {', '.join(missing[:8])} record no {key}: the series holds no "
            f"{what}s to calibrate"
        )
    values = np.asarray(values, dtype=float)
    moves = values - values[0]
    span = np.abs(moves).max()
    if span == 0:
        raise CalibrationFailedError(
            f"the {what} never changes in this series: there is nothing to calibrate"
        )
    images = []
    for r in records:
        if r.image is None:
            raise InvalidDataError(
                f"record {r.index} has no image: the stack (or the image files) the .mdoc "
                "names must be beside it"
            )
        images.append(_check_image(r.image, f"image {r.index}"))
    if len({im.shape for im in images}) != 1:
        raise InvalidDataError("the images of the series differ in shape")
    binnings = {r.binning for r in records}
    if len(binnings) != 1:
        raise InvalidDataError(f"the records mix binnings {sorted(map(str, binnings))}")
    binning = float(records[0].binning or 1.0)
    notes = []
    if records[0].binning is None:
        notes.append("Binning is not recorded: 1 is assumed for the unbinned matrix")

    deltas = np.diff(values, axis=0)
    steps = _steps(images)
    significance = [s.candidates[0][0] / s.spread if s.candidates else 0.0 for s in steps]
    if np.median(significance) < PEAK_SIGNIFICANCE:
        raise CalibrationFailedError(
            "no correlation peak stands out of the noise (median peak "
            f"{np.median(significance):.1f} noise levels, {PEAK_SIGNIFICANCE:g} "
            "needed): the images hold too little detail or too few counts to measure shifts"
        )
    prior_binned = None
    if prior is not None:
        # (col,row) per unit unbinned -> (row, col) per unit binned
        prior = np.asarray(prior, dtype=float)
        if prior.shape != (2, 2) or not np.isfinite(prior).all():
            raise InvalidParameterError("the prior matrix must be 2x2 and finite")
        prior_binned = prior[::-1] / binning

    def radius_of(prediction):
        if search_radius is not None:
            return float(search_radius)
        return 4.0 + (0.25 if prior is not None else 0.1) * float(np.hypot(*prediction))

    matrix_binned, _ = _choose_matrix(steps, deltas, prior_binned, radius_of)

    step_shifts = np.zeros((len(steps), 2))
    heights = np.zeros(len(records))
    near = np.zeros(len(steps))
    for k, step in enumerate(steps):
        prediction = matrix_binned @ deltas[k]
        correlation = np.fft.ifft2(step.cross).real
        found = _peaks(correlation, prediction, radius_of(prediction), 1)
        if not found:
            raise CalibrationFailedError(
                f"no correlation peak between records {records[k].index} and "
                f"{records[k + 1].index} near the predicted shift "
                f"({prediction[1]:.1f}, {prediction[0]:.1f}) px: the shift cannot be measured"
            )
        height, dy, dx = found[0]
        near[k] = height / step.spread
        step_shifts[k] = _refine_overlap(images[k], images[k + 1], *_refine(step.cross, dy, dx))
        heights[k + 1] = height / step.norm
    if np.median(near) < PEAK_NEAR_PREDICTION:
        raise CalibrationFailedError(
            "no correlation peak stands out of the noise near the predicted shifts (median "
            f"{np.median(near):.1f} noise levels, {PEAK_NEAR_PREDICTION:g} needed): the shifts "
            "cannot be measured (too little overlap, too little detail, or too much noise)"
        )
    weak = [records[k + 1].index for k in np.flatnonzero(near < PEAK_NEAR_PREDICTION)]
    if weak:
        notes.append(
            f"weak correlation peak (below {PEAK_NEAR_PREDICTION:g} noise levels) for "
            f"record(s) {weak}: check their residuals"
        )

    # positions (col, row) in unbinned px, relative to the first record
    positions = np.vstack([[0.0, 0.0], np.cumsum(step_shifts[:, ::-1], axis=0)]) * binning
    times, axis = _time_axis(records, notes)
    fit = _least_squares(moves, positions, times)
    matrix, sigma, drift, predicted = fit
    residuals = np.hypot(*(positions - predicted).T)
    rate = np.abs(np.diff(drift, axis=0)).max(axis=1) / np.maximum(np.diff(times), 1e-9)
    drift_rate = float(rate.max()) if len(rate) else 0.0
    drifted = float(np.hypot(*drift[-1]))
    if drifted > 2.0:
        notes.append(
            f"the image drifted {drifted:.1f} px (unbinned) over the series; the drift was "
            "fitted and removed"
        )
    defoci = [r.defocus_um for r in records if r.defocus_um is not None]
    if defoci and max(defoci) - min(defoci) > 1.0:
        notes.append(
            f"Defocus varies from {min(defoci):g} to {max(defoci):g} µm within the series: "
            "the image-shift matrix changes with defocus (see high-defocus image shift)"
        )
    if residuals.max() > 1.0 + 5 * max(np.median(residuals), SHIFT_FLOOR_PX * binning):
        worst = int(np.argmax(residuals))
        notes.append(
            f"record {records[worst].index} is {residuals[worst]:.2f} px from the fit: check it"
        )
    return ShiftFit(
        matrix=matrix,
        sigma=sigma,
        setting=setting,
        records=[r.index for r in records],
        moves=moves,
        positions=positions,
        predicted=predicted,
        drift=drift,
        residuals=residuals,
        peaks=heights,
        binning=binning,
        drift_rate=drift_rate,
        drift_axis=axis,
        notes=notes,
    )


def _time_axis(records, notes) -> tuple[np.ndarray, str]:
    """Sub-second time stamps when every record has one and they increase; else the
    record order (whole seconds, as ``DateTime`` has, would misplace the drift of records
    taken a second or two apart by up to half a second)."""
    times = [r.time_s for r in records]
    if all(t is not None for t in times):
        t = np.asarray(times, dtype=float)
        if np.all(np.diff(t) > 0) and np.any(t != np.round(t)):
            return t - t[0], "s"
    notes.append(
        "the records' times are missing, in whole seconds or not increasing: drift is "
        "modelled against record order"
    )
    return np.arange(len(records), dtype=float), "record"


def _least_squares(moves, positions, times):
    """Matrix, its standard errors, drift and prediction of ``positions = M·moves +
    drift(t)``; the drift a polynomial in t whose degree the unshifted records allow."""
    n = len(moves)
    unshifted = int(np.sum(np.linalg.norm(moves, axis=1) == 0))
    degree = int(min(2, max(unshifted - 1, 0), max(n - 4, 0)))
    scale = max(float(np.abs(times).max()), 1e-12)
    t = times / scale
    design = np.column_stack([moves, *[t**d for d in range(1, degree + 1)]])
    # the first record is the origin: its position is exactly 0, the drift starts at 0
    coefficients, *_ = np.linalg.lstsq(design, positions, rcond=None)
    predicted = design @ coefficients
    dof = n - 1 - design.shape[1]
    residual = positions - predicted
    cov_unit = np.linalg.pinv(design.T @ design)
    sigma = np.zeros((2, 2))
    floor = SHIFT_FLOOR_PX**2
    for c in range(2):
        variance = float(residual[:, c] @ residual[:, c]) / dof if dof > 0 else np.inf
        # steps accumulate: a position n steps away carries about n step errors
        variance = max(variance, floor * n)
        sigma[c] = np.sqrt(np.diag(cov_unit)[:2] * variance)
    matrix = coefficients[:2].T
    drift = predicted - moves @ matrix.T
    return matrix, sigma, drift, predicted


# ---------------------------------------------------------------------------------------
# the two calibrations and the high-defocus ratio


def image_shift_matrix(records: list[Record], **kwargs) -> ShiftFit:
    """:func:`fit_shift_matrix` for image shift (px per image-shift unit)."""
    return fit_shift_matrix(records, "image_shift", **kwargs)


def stage_shift_matrix(records: list[Record], **kwargs) -> ShiftFit:
    """:func:`fit_shift_matrix` for the stage (px per µm). Long moves, made in steps
    each a fraction of the field, average a stage's periodic position error out."""
    fit = fit_shift_matrix(records, "stage", **kwargs)
    length = float(np.abs(fit.moves).max())
    if length < 2.0:
        fit.notes.append(
            f"the stage moved at most {length:.2f} µm: a periodic stage error (often "
            "about 1 µm period) does not average out over so short a move"
        )
    return fit


def scale_rotation(matrix) -> tuple[float, float]:
    """Scale and rotation (degrees, from +x towards +y of the matrix's axes) of the
    conformal part of a 2x2 matrix ``[[xx, xy], [yx, yy]]``."""
    m = np.asarray(matrix, dtype=float)
    c = 0.5 * (m[0, 0] + m[1, 1])
    s = 0.5 * (m[1, 0] - m[0, 1])
    return float(math.hypot(c, s)), float(math.degrees(math.atan2(s, c)))


@dataclass
class HighDefocusIS:
    """The image-shift matrix at a defocus relative to that at focus.

    ``ratio = IS_def · inv(IS_0)`` on (col, row) of the stored array (SerialEM computes
    ``MatMul(MatInv(IS0), ISdef)``, which applies ``inv(IS0)`` first: the same matrix).
    ``scale`` and ``rotation_deg`` are its conformal part, the rotation from +col towards
    +row of the stored array; ``serialem_rotation_deg`` is the same rotation in SerialEM's
    camera axes (opposite sign when the rows run against camera y, as in TIFF files).
    """

    defocus_um: float
    focus_defocus_um: float
    ratio: np.ndarray
    scale: float
    scale_sigma: float
    rotation_deg: float
    rotation_sigma_deg: float
    focus: ShiftFit
    defocused: ShiftFit
    notes: list[str] = field(default_factory=list)
    #: a record of the defocused series: the beam setting (spot, probe, intensity) the
    #: calibration belongs to
    record: Record | None = None

    def serialem_rotation_deg(self, row_is_camera_y: bool) -> float:
        return self.rotation_deg if row_is_camera_y else -self.rotation_deg

    def table_row(self, focus_name: str, defocused_name: str) -> dict:
        """What a high-defocus table keeps of this calibration, beside the magnification
        calibrations (``HighDefocusTable.add`` keywords): the defocus relative to the focus
        series (µm), scale, rotation (from +col towards +row of the stored array, as the
        table's), the defocused series' beam setting, the two series' names and, as
        ``source``, where the row came from."""
        record = self.record
        return {
            "defocus_um": self.defocus_um - self.focus_defocus_um,
            "scale": self.scale,
            "rotation_deg": self.rotation_deg,
            "intensity": None if record is None else record.intensity,
            "spot": None if record is None else record.spot,
            "probe": (record.probe or "") if record is not None else "",
            "near_image": str(focus_name),
            "far_image": str(defocused_name),
            "source": (
                f"SerialEM high-defocus image shift: {Path(defocused_name).name} (Defocus "
                f"{self.defocus_um + 0.0:g} µm) against {Path(focus_name).name} "
                f"({self.focus_defocus_um + 0.0:g} µm); "
                f"scale ± {self.scale_sigma:.2g}, rotation ± {self.rotation_sigma_deg:.2g}°"
            ),
        }

    def to_dict(self) -> dict:
        return {
            "values": {
                "defocus": {"value": self.defocus_um, "unit": "um"},
                "focus_defocus": {"value": self.focus_defocus_um, "unit": "um"},
                "scale": {"value": self.scale, "unit": "", "sigma": self.scale_sigma},
                "rotation": {
                    "value": self.rotation_deg,
                    "unit": "deg",
                    "sigma": self.rotation_sigma_deg,
                    "meaning": "from +col towards +row of the stored array",
                },
                "ratio": {"value": self.ratio.tolist(), "unit": ""},
                "matrix_focus": self.focus.to_dict()["values"]["matrix"],
                "matrix_defocus": self.defocused.to_dict()["values"]["matrix"],
            },
            "notes": list(self.notes),
        }


def high_defocus_image_shift(
    focus: ShiftFit,
    defocused: ShiftFit,
    *,
    focus_defocus_um: float,
    defocus_um: float,
    record: Record | None = None,
) -> HighDefocusIS:
    """Scale and rotation of the image-shift matrix at ``defocus_um`` against that at
    ``focus_defocus_um``, with standard errors propagated from both matrices; ``record``
    (one of the defocused series) gives the beam setting the result belongs to."""
    if focus.setting != "image_shift" or defocused.setting != "image_shift":
        raise InvalidParameterError("the high-defocus ratio compares image-shift matrices")

    def ratio_of(a, b):
        return b @ np.linalg.inv(a)

    ratio = ratio_of(focus.matrix, defocused.matrix)
    scale, rotation = scale_rotation(ratio)
    # linear propagation by finite differences over the eight matrix elements
    jac_s, jac_r, sig = [], [], []
    for which, fit in ((0, focus), (1, defocused)):
        for i in range(2):
            for j in range(2):
                h = 1e-6 * max(fit.norm, 1e-12)
                a, b = focus.matrix.copy(), defocused.matrix.copy()
                (a if which == 0 else b)[i, j] += h
                s2, r2 = scale_rotation(ratio_of(a, b))
                jac_s.append((s2 - scale) / h)
                jac_r.append(((r2 - rotation + 180) % 360 - 180) / h)
                sig.append(fit.sigma[i, j])
    sig = np.asarray(sig)
    scale_sigma = float(np.sqrt(np.sum((np.asarray(jac_s) * sig) ** 2)))
    rotation_sigma = float(np.sqrt(np.sum((np.asarray(jac_r) * sig) ** 2)))
    return HighDefocusIS(
        defocus_um=float(defocus_um),
        focus_defocus_um=float(focus_defocus_um),
        ratio=ratio,
        scale=scale,
        scale_sigma=scale_sigma,
        rotation_deg=rotation,
        rotation_sigma_deg=rotation_sigma,
        focus=focus,
        defocused=defocused,
        notes=[*focus.notes, *defocused.notes],
        record=record,
    )
