"""Magnification and rotation of a high-defocus image relative to near focus.

The user draws a line between the same two features in both images: the ratio of the
lengths and the difference of the directions are the first estimate. The refinement then
measures the local displacement of many patches between the near-focus image and the
defocused one mapped back onto it, and fits a similarity transform (scale, rotation,
translation) to all of them by weighted least squares, starting near the lines and
growing outwards. Each patch may only move as far as the current estimate is uncertain,
so a periodic specimen cannot pull the fit onto a neighbouring lattice position while the
lines are right; re-mapping and re-measuring until nothing moves removes the small bias
of the sub-pixel peak fit.

Pure computation (numpy/scipy).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from .._checks import image_2d
from ..errors import CalibrationFailedError, InvalidParameterError
from ..geometry import fit_similarity, similarity

__all__ = ["HighDefocusResult", "MIN_LINE_PX", "aligned_far", "line_estimate", "measure"]

#: Lines shorter than this (pixels) give a scale no better than a few per cent.
MIN_LINE_PX = 100.0
#: Images are binned to about this size for the search (speed; the fit stays sub-pixel).
WORKING_SIZE = 1024
#: How far a hand-drawn line end may be from the feature (pixels): sets the first search.
LINE_END_ERROR_PX = 4.5
#: A second correlation maximum this close to the first makes a patch ambiguous.
AMBIGUOUS_PEAK_RATIO = 0.9


@dataclass(frozen=True)
class HighDefocusResult:
    """The defocused image's magnification and rotation relative to near focus.

    Attributes
    ----------
    scale : float
        Magnification of the defocused image relative to near focus (> 1: larger).
    rotation_deg : float
        Rotation of the defocused image relative to near focus, degrees from +x towards +y:
        positive turns the image clockwise as napari displays it (same sense as the twin's
        ``scan_rotation``). A direction at angle φ in the near-focus image appears at
        φ + ``rotation_deg`` in the defocused one.
    score : float
        Zero-normalised cross-correlation of the near-focus image with the defocused one
        mapped onto it, over their overlap (1 = identical up to contrast; the defocus blur
        keeps it below 1).
    line_scale, line_rotation_deg, line_score : float
        The estimate from the two lines alone, and its correlation score.
    matrix, offset : ndarray
        The mapping of near-focus pixels ``p = (y, x)`` to defocused-image pixels,
        ``q = matrix @ p + offset``; ``matrix = scale · R(rotation)``.
    overlap : float
        Fraction of the near-focus image that the defocused image covers.
    refined : bool
        False when only the lines were used (``refine=False``).
    patches : int
        Number of patch displacements in the final fit (0 when not refined).
    residual_px : float
        RMS distance of those displacements from the fitted transform, in defocused-image
        pixels (NaN when not refined).
    binning : int
        Binning of the images during the search.
    """

    scale: float
    rotation_deg: float
    score: float
    line_scale: float
    line_rotation_deg: float
    line_score: float
    matrix: np.ndarray
    offset: np.ndarray
    overlap: float
    refined: bool
    patches: int = 0
    residual_px: float = float("nan")
    binning: int = 1
    notes: tuple[str, ...] = field(default=())

    def near_to_far(self, points) -> np.ndarray:
        """Defocused-image positions ``(..., 2)`` of near-focus pixels (y, x)."""
        return np.asarray(points, float) @ self.matrix.T + self.offset

    def far_to_near(self, points) -> np.ndarray:
        """Near-focus positions ``(..., 2)`` of defocused-image pixels (y, x)."""
        return (np.asarray(points, float) - self.offset) @ np.linalg.inv(self.matrix).T

    def to_dict(self) -> dict[str, Any]:
        """Plain numbers, for JSON."""
        return {
            "scale": self.scale,
            "rotation_deg": self.rotation_deg,
            "score": self.score,
            "line_scale": self.line_scale,
            "line_rotation_deg": self.line_rotation_deg,
            "line_score": self.line_score,
            "matrix": self.matrix.tolist(),
            "offset": self.offset.tolist(),
            "overlap": self.overlap,
            "refined": self.refined,
            "patches": self.patches,
            "residual_px": None if math.isnan(self.residual_px) else self.residual_px,
            "binning": self.binning,
            "notes": list(self.notes),
        }


# -- input checks -----------------------------------------------------------------------
def _check_image(image, name: str) -> np.ndarray:
    return image_2d(image, name=f"the {name} image", min_size=64).astype(np.float32, copy=False)


def _check_line(line, shape, name: str) -> np.ndarray:
    try:
        ends = np.asarray(line, float).reshape(2, 2)
    except (TypeError, ValueError) as exc:
        raise InvalidParameterError(
            f"the {name} line must be ((y0, x0), (y1, x1)) in pixels; got {line!r}"
        ) from exc
    if not np.isfinite(ends).all():
        raise InvalidParameterError(f"the {name} line has a non-finite end: {ends.tolist()}")
    length = float(np.hypot(*(ends[1] - ends[0])))
    if length == 0:
        raise InvalidParameterError(
            f"the {name} line has zero length: both ends are at "
            f"{ends[0].tolist()}; draw it between two features"
        )
    if length < MIN_LINE_PX:
        raise InvalidParameterError(
            f"the {name} line is {length:.1f} px long; draw it between two features at least "
            f"{MIN_LINE_PX:.0f} px apart (a ±3 px error at the ends of a shorter line makes "
            "the scale uncertain by several per cent)"
        )
    inside = (ends >= -0.5) & (ends <= np.asarray(shape) - 0.5)
    if not inside.all():
        raise InvalidParameterError(
            f"the {name} line {ends.round(1).tolist()} leaves the "
            f"{name} image (shape {tuple(shape)})"
        )
    return ends


def line_estimate(near_line, far_line) -> tuple[float, float, np.ndarray, np.ndarray]:
    """Scale, rotation (degrees) and the mapping ``q = matrix @ p + offset`` from two lines.

    The lines join the same two features, in the same order, in the near-focus and the
    defocused image; the mapping takes the near line's midpoint to the far line's.
    """
    near_line = np.asarray(near_line, float).reshape(2, 2)
    far_line = np.asarray(far_line, float).reshape(2, 2)
    v_near, v_far = near_line[1] - near_line[0], far_line[1] - far_line[0]
    scale = float(np.hypot(*v_far) / np.hypot(*v_near))
    turn = math.atan2(v_far[0], v_far[1]) - math.atan2(v_near[0], v_near[1])
    rotation = float(np.rad2deg((turn + math.pi) % (2 * math.pi) - math.pi))
    matrix = similarity(scale, rotation)
    offset = far_line.mean(axis=0) - matrix @ near_line.mean(axis=0)
    return scale, rotation, matrix, offset


#: The images must agree this much better (correlation) with a line turned round to say
#: it was drawn the other way.
REVERSED_MARGIN = 0.15


# -- the measurement ---------------------------------------------------------------------
def measure(near, far, near_line, far_line, *, refine: bool = True) -> HighDefocusResult:
    """Magnification and rotation of a defocused image relative to a near-focus one.

    Parameters
    ----------
    near, far : array_like (ny, nx)
        The near-focus image and the defocused one (any real dtype; sizes may differ).
    near_line, far_line : ((y0, x0), (y1, x1))
        A line between the same two features, in the same order, in each image's pixels.
        Each must be at least ``MIN_LINE_PX`` (100) px long and inside its image.
    refine : bool
        Refine the line estimate by image correlation (default). False returns the line
        estimate with its correlation score.

    Returns
    -------
    HighDefocusResult

    Raises
    ------
    InvalidDataError
        An image is not 2D, too small, not real or not finite.
    InvalidParameterError
        A line is malformed, of zero length, shorter than 100 px or outside its image.
    CalibrationFailedError
        The images do not agree anywhere near the line estimate (featureless, unrelated,
        or lines between different features); the message gives the line estimate.
    """
    near = _check_image(near, "near-focus")
    far = _check_image(far, "defocused")
    near_line = _check_line(near_line, near.shape, "near-focus")
    far_line = _check_line(far_line, far.shape, "defocused")
    scale0, rotation0, matrix0, offset0 = line_estimate(near_line, far_line)

    binning = max(1, math.ceil(max(*near.shape, *far.shape) / WORKING_SIZE))
    near_b, far_b = _bin(near, binning), _bin(far, binning)
    matrix, offset = matrix0, _binned_offset(matrix0, offset0, binning)
    line_score, overlap = _score(near_b, far_b, matrix, offset)
    notes: tuple[str, ...] = ()
    # a line drawn the other way round turns the estimate by 180°: the images say which
    turned = line_estimate(near_line, far_line[::-1])
    turned_score, turned_overlap = _score(
        near_b, far_b, turned[2], _binned_offset(turned[2], turned[3], binning)
    )
    if turned_score > max(line_score + REVERSED_MARGIN, 1.5 * line_score):
        notes = (
            f"the defocused line was drawn in the opposite direction to the near-focus one "
            f"(the images agree {turned_score:.2f} that way, {line_score:.2f} as drawn): "
            "turned round",
        )
        far_line = far_line[::-1]
        scale0, rotation0, matrix0, offset0 = turned
        matrix, offset = matrix0, _binned_offset(matrix0, offset0, binning)
        line_score, overlap = turned_score, turned_overlap
    if not refine:
        return HighDefocusResult(
            scale=scale0,
            rotation_deg=rotation0,
            score=line_score,
            line_scale=scale0,
            line_rotation_deg=rotation0,
            line_score=line_score,
            matrix=matrix0,
            offset=offset0,
            overlap=overlap,
            refined=False,
            binning=binning,
            notes=notes,
        )
    centre = near_line.mean(axis=0) / binning
    length = float(np.hypot(*(near_line[1] - near_line[0]))) / binning
    try:
        matrix, offset, patches, residual = _refine(
            near_b, far_b, matrix, offset, centre, length, LINE_END_ERROR_PX / binning
        )
    except CalibrationFailedError as exc:
        raise CalibrationFailedError(
            f"{exc}. The lines alone give scale {scale0:.4f} and rotation {rotation0:.2f}°; "
            "check that both lines join the same two features in the same order"
        ) from exc
    score, overlap = _score(near_b, far_b, matrix, offset)
    scale = float(np.sqrt(abs(np.linalg.det(matrix))))
    rotation = float(np.rad2deg(math.atan2(matrix[0, 1], matrix[0, 0])))
    full_offset = offset * binning + (binning - 1) / 2 * (1 - matrix.sum(axis=1))
    return HighDefocusResult(
        scale=scale,
        rotation_deg=rotation,
        score=score,
        line_scale=scale0,
        line_rotation_deg=rotation0,
        line_score=line_score,
        matrix=matrix,
        offset=full_offset,
        overlap=overlap,
        refined=True,
        patches=patches,
        residual_px=residual * binning,
        binning=binning,
        notes=notes,
    )


def aligned_far(far, result: HighDefocusResult, output_shape, *, order: int = 1) -> np.ndarray:
    """The defocused image mapped onto the near-focus pixel grid (NaN outside it).

    Overlay it on the near-focus image to judge the alignment.
    """
    far = np.asarray(far, dtype=np.float32)
    return ndimage.affine_transform(
        far,
        result.matrix,
        offset=result.offset,
        output_shape=tuple(output_shape),
        order=order,
        mode="constant",
        cval=np.nan,
    )


# -- internals -----------------------------------------------------------------------------
def _bin(image: np.ndarray, b: int) -> np.ndarray:
    if b == 1:
        return image
    ny, nx = image.shape[0] // b * b, image.shape[1] // b * b
    return image[:ny, :nx].reshape(ny // b, b, nx // b, b).mean(axis=(1, 3), dtype=np.float32)


def _binned_offset(matrix: np.ndarray, offset: np.ndarray, b: int) -> np.ndarray:
    """Offset of the same mapping between binned pixels (pixel centres at b·p + (b-1)/2)."""
    c = (b - 1) / 2
    return (offset + matrix @ np.array([c, c]) - c) / b


def _warp(far: np.ndarray, matrix, offset, shape) -> np.ndarray:
    return ndimage.affine_transform(
        far, matrix, offset=offset, output_shape=shape, order=1, mode="constant", cval=np.nan
    )


def _score(near: np.ndarray, far: np.ndarray, matrix, offset) -> tuple[float, float]:
    """ZNCC over the overlap, and the overlap fraction of the near-focus image."""
    warped = _warp(far, matrix, offset, near.shape)
    valid = np.isfinite(warped)
    overlap = float(valid.mean())
    if valid.sum() < 16:
        return float("nan"), overlap
    a = near[valid] - near[valid].mean()
    b = warped[valid] - warped[valid].mean()
    denominator = float(np.sqrt(np.dot(a, a) * np.dot(b, b)))
    return (float(np.dot(a, b) / denominator) if denominator > 0 else float("nan")), overlap


def _refine(near, far, matrix, offset, centre, length, end_error):
    """Fit ``q = matrix @ p + offset`` to patch displacements, growing from the lines.

    Returns the matrix, the offset, the number of patches in the last fit and their RMS
    residual (binned pixels).
    """
    size = int(np.clip(2 ** round(math.log2(min(near.shape) / 6)), 32, 128))
    cap = size / 4  # largest displacement a patch may report
    window = np.outer(np.hanning(size), np.hanning(size)).astype(np.float32)
    coarse = _grid(near.shape, size, size // 2)
    dense = _grid(near.shape, size, size // 4)  # more votes close to the lines
    dense_distance = np.hypot(*(dense - centre).T)
    nearest = np.sort(dense_distance)[min(12, len(dense) - 1)]

    # 1. The common shift of the patches around the lines. Their correlations add up, so
    # texture or a particle anywhere there decides between the positions of a lattice;
    # on a perfect lattice any of them gives the same scale and rotation.
    centres = dense[dense_distance <= max(0.25 * length, nearest)]
    warped = _warp(far, matrix, offset, near.shape)
    correlation, inside = _correlate(
        _patches(near, centres, size, window), _patches(warped, centres, size), window
    )
    if not inside.any():
        raise CalibrationFailedError(
            "the defocused image does not cover the near-focus image around the line"
        )
    common = _peaks(
        correlation[inside].mean(axis=0)[None], np.array([2.0 * end_error + 1.0]), unique=False
    )
    if not common.ok[0]:
        raise CalibrationFailedError("the images do not correlate around the lines")
    offset = offset + matrix @ common.shift[0]

    # 2. Scale and rotation, from the patches near the lines outwards. Each patch may move
    # only as far as the current estimate is uncertain there (lattice-safe). The line
    # ends' error turns into at most 2√2·end_error/length of relative error.
    reach = max(0.4 * length, nearest)
    centres, distance = dense, dense_distance
    radius = np.minimum(cap, 1.5 + 2.9 * end_error * distance / length)
    corners = np.array([[0, 0], [0, near.shape[1]], [near.shape[0], 0], near.shape], float)
    previous_edges = None
    coarse_distance = np.hypot(*(coarse - centre).T)
    for _ in range(12):
        chosen = distance <= reach
        warped = _warp(far, matrix, offset, near.shape)
        correlation, inside = _correlate(
            _patches(near, centres[chosen], size, window),
            _patches(warped, centres[chosen], size),
            window,
        )
        found = _peaks(correlation, radius[chosen])
        ok = found.ok & inside
        if ok.sum() < 3:
            periodic = (found.ambiguous & inside).sum()
            raise CalibrationFailedError(
                f"only {ok.sum()} image region(s) near the lines correlate between the two "
                "images (at least 3 are needed)"
                + (
                    f"; {periodic} look periodic at a spacing close to the lines' "
                    "uncertainty: draw longer lines, or between non-periodic features"
                    if periodic
                    else ""
                )
            )
        p = centres[chosen][ok]
        q = (p + found.shift[ok]) @ matrix.T + offset
        matrix, offset, residual, used = fit_similarity(p, q, found.weight[ok])
        # The next pass reaches further: what is known now extrapolates to ~1 px there.
        grown = reach >= coarse_distance.max()
        centres, distance = coarse, coarse_distance
        reach = min(2.5 * reach, distance.max())
        radius = np.minimum(cap, max(1.0, 3.0 * residual) * (1.0 + distance / reach) + 1.0)
        edges = corners @ matrix.T + offset
        if grown and previous_edges is not None and np.abs(edges - previous_edges).max() < 0.02:
            break
        previous_edges = edges
    return matrix, offset, used, residual


def _grid(shape, size: int, step: int) -> np.ndarray:
    """Centres (n, 2) of the patches of ``size`` that fit in ``shape``, ``step`` apart."""
    ys = np.arange(size // 2, shape[0] - size // 2 + 1, step)
    xs = np.arange(size // 2, shape[1] - size // 2 + 1, step)
    return np.stack(np.meshgrid(ys, xs, indexing="ij"), axis=-1).reshape(-1, 2).astype(float)


def _patches(image: np.ndarray, centres: np.ndarray, size: int, window=None) -> np.ndarray:
    """Square patches (n, size, size) around integer centres; zero-mean and windowed
    when a window is given."""
    starts = centres.astype(int) - size // 2
    patches = np.lib.stride_tricks.sliding_window_view(image, (size, size))[
        starts[:, 0], starts[:, 1]
    ]
    return patches if window is None else _prepare(patches, window)


def _prepare(patches: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Zero-mean, windowed patches."""
    patches = patches - patches.mean(axis=(1, 2), keepdims=True)
    return patches * window


def _correlate(reference: np.ndarray, moving: np.ndarray, window: np.ndarray):
    """Correlation coefficient surfaces c[d] ~ Σ ref(p)·mov(p + d), zero lag in the centre.

    Returns the surfaces (n, size, size) and whether each moving patch lies wholly inside
    the defocused image (NaN marks its outside).
    """
    size = reference.shape[1]
    inside = np.isfinite(moving).all(axis=(1, 2))
    moving = _prepare(np.where(np.isfinite(moving), moving, 0.0), window)
    spectrum = np.conj(np.fft.rfft2(reference)) * np.fft.rfft2(moving)
    correlation = np.fft.fftshift(np.fft.irfft2(spectrum, s=(size, size)), axes=(1, 2))
    energy = np.sqrt((reference**2).sum(axis=(1, 2)) * (moving**2).sum(axis=(1, 2)))
    with np.errstate(invalid="ignore", divide="ignore"):
        correlation = np.where(energy[:, None, None] > 0, correlation / energy[:, None, None], 0.0)
    return correlation, inside


@dataclass
class _Found:
    shift: np.ndarray  # (n, 2) displacement d with moving(p + d) ≈ reference(p), pixels
    weight: np.ndarray  # (n,) correlation coefficient at the peak
    ok: np.ndarray  # (n,) bool: a clear maximum
    ambiguous: np.ndarray  # (n,) bool: two nearly equal maxima (a lattice)


def _peaks(correlation: np.ndarray, radius: np.ndarray, unique: bool = True) -> _Found:
    """The sub-pixel maximum of each surface within ``radius`` of zero lag.

    With ``unique``, a surface with a second maximum nearly as high is not ``ok``.
    """
    n, size, _ = correlation.shape
    lag = np.arange(size) - size // 2
    lag_distance = np.hypot(lag[:, None], lag[None, :])
    masked = np.where(lag_distance[None] <= radius[:, None, None], correlation, -np.inf)
    iy, ix = np.unravel_index(masked.reshape(n, -1).argmax(axis=1), (size, size))
    rows = np.arange(n)
    shift = np.stack(
        [
            _parabola(correlation, rows, iy, ix, axis=0),
            _parabola(correlation, rows, iy, ix, axis=1),
        ],
        axis=1,
    )
    shift += np.stack([lag[iy], lag[ix]], axis=1)
    weight = correlation[rows, iy, ix]
    # A peak on the edge of the allowed region is a slope, not a maximum.
    on_edge = lag_distance[iy, ix] > radius - 1.0
    ok = ~on_edge & (weight > 0.05) & np.isfinite(shift).all(axis=1)
    ambiguous = np.zeros(n, bool)
    if unique:
        # Two nearly equal maxima inside the region (a lattice whose period is smaller
        # than the uncertainty): the patch cannot tell which is right, so it does not vote.
        interior = lag_distance[None] <= radius[:, None, None] - 1.0
        local = masked == ndimage.maximum_filter(masked, size=(1, 3, 3), mode="nearest")
        others = np.where(local & interior, masked, -np.inf)
        others[rows, iy, ix] = -np.inf
        second = others.reshape(n, -1).max(axis=1)
        ambiguous = second > AMBIGUOUS_PEAK_RATIO * weight
        ok &= ~ambiguous
    return _Found(shift=shift, weight=weight, ok=ok, ambiguous=ambiguous)


def _parabola(correlation, rows, iy, ix, axis: int) -> np.ndarray:
    size = correlation.shape[1]
    if axis == 0:
        before = correlation[rows, np.clip(iy - 1, 0, size - 1), ix]
        after = correlation[rows, np.clip(iy + 1, 0, size - 1), ix]
    else:
        before = correlation[rows, iy, np.clip(ix - 1, 0, size - 1)]
        after = correlation[rows, iy, np.clip(ix + 1, 0, size - 1)]
    centre = correlation[rows, iy, ix]
    curvature = before - 2 * centre + after
    with np.errstate(invalid="ignore", divide="ignore"):
        delta = np.where(curvature < 0, 0.5 * (before - after) / curvature, 0.0)
    return np.clip(delta, -0.5, 0.5)
