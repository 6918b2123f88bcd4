"""The lattice of an autocorrelation: candidate peaks, the walk along each direction, the
check of the whole lattice against what lies between its points, the weighted fit of its
vectors, and the choice of the finest lattice or of the sub-lattice that is the image's
true period. A :class:`Lattice` is what each step finds, or why it found none."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.stats import t as student_t

from ..autocorrelation import Autocorrelation, refine_peaks

#: Periods the image must span along each of two directions.
MIN_REPEATS = 3
#: A peak counts when it is at least this fraction of the starting peak's height.
MIN_RELATIVE_HEIGHT = 0.35
#: A lattice is accepted when peaks are found at this fraction of the predicted points.
MIN_QUALITY = 0.5
MAX_LATTICE_POINTS = 400
#: Lattice points off the two walked directions needed to confirm a lattice, and how far
#: (in standard errors) the autocorrelation must be higher on them than between them.
MIN_CHECK_POINTS = 4
#: Shortest lattice period that can be measured, in pixels of the working image.
MIN_SPACING_PX = 2.5
MIN_SIGNIFICANCE = 6.0
#: Lattice points must be higher than the points half-way along each direction by at
#: least this fraction of the peak height.
MIN_CONTRAST = 0.15
#: One-sided false-alarm probability of each direction's contrast test (Student's t with
#: the number of check points): few points need a much larger t than many.
FALSE_ALARM = 1e-4
#: Candidate peaks tried as lattice directions, and how many of them may be the first.
CANDIDATES = 8
FIRST_DIRECTIONS = 6
#: A finer lattice's peaks are as high as the coarse one's: at least this fraction of them
#: (lower ones are sidelobes, or a sub-lattice's); it may confirm with this much less
#: quality.
FINER_PEAK_RATIO = 0.7
FINER_QUALITY_LOSS = 0.1


@dataclass
class Lattice:
    """A lattice the autocorrelation confirms (``vectors`` set), or an attempt that failed
    (``reason`` says why)."""

    start: np.ndarray  # the peak the attempt started from, working pixels
    quality: float = 0.0  # fraction of the predicted points where a peak is found
    reason: str | None = None
    vectors: np.ndarray | None = None  # rows a, b (working pixels, (y, x))
    residual: float | None = None  # RMS misfit of the peaks, working pixels
    covariance: np.ndarray | None = None  # of (a_y, b_y, a_x, b_x)
    significance: float | None = None
    intervals: tuple[int, int] | None = None  # farthest multiples walked along a and b
    points: np.ndarray | None = None  # the fitted peaks, working pixels
    series: np.ndarray | None = None  # per peak: 0 along a, 1 along b, 2 elsewhere
    height: float | None = None  # the starting peaks' height

    @property
    def found(self) -> bool:
        return self.vectors is not None


def _start_candidates(acf: Autocorrelation, max_candidates: int = CANDIDATES) -> list[np.ndarray]:
    """Strong peaks nearest the centre (one of each ± pair), nearest first."""
    image = acf.image
    # the central peak ends at the first minimum of the radially averaged autocorrelation
    oy, ox = acf.origin
    yy, xx = np.indices(image.shape)
    radius = np.hypot(yy - oy, xx - ox)
    rbin = radius.astype(int)
    limit = min(oy, ox)
    sums = np.bincount(rbin.ravel(), weights=image.ravel(), minlength=limit + 2)[: limit + 1]
    counts = np.bincount(rbin.ravel(), minlength=limit + 2)[: limit + 1]
    profile = sums / np.maximum(counts, 1)
    ends = [
        r
        for r in range(1, limit)
        if profile[r] <= 0 or (profile[r] <= profile[r - 1] and profile[r] <= profile[r + 1])
    ]
    r_min = ends[0] if ends else 2
    upper = (yy > oy) | ((yy == oy) & (xx > ox))  # one of each centro-symmetric pair
    maxima = (image == ndimage.maximum_filter(image, size=3)) & acf.valid & upper
    maxima &= (radius > max(r_min, MIN_SPACING_PX)) & (radius < limit - 2)
    py, px = np.nonzero(maxima)
    if py.size == 0:
        return []
    heights = image[py, px]
    strong = heights >= 0.5 * heights.max()
    py, px, heights = py[strong], px[strong], heights[strong]
    dist = radius[py, px]
    nearest = np.argsort(dist)[:200]
    # non-maximum suppression over about the central peak's radius: a ridge of the
    # autocorrelation (a line grating's) has many local maxima, all lower than the lattice
    # point on it
    kept: list[int] = []
    for i in nearest[np.argsort(-heights[nearest], kind="stable")]:
        if all(np.hypot(py[i] - py[j], px[i] - px[j]) > max(2.0, r_min) for j in kept):
            kept.append(i)
    kept.sort(key=lambda i: dist[i])
    return [np.array([py[i] - oy, px[i] - ox], float) for i in kept[:max_candidates]]


def _walk(acf: Autocorrelation, first: np.ndarray, height: float) -> tuple[list, list]:
    """Peaks at growing multiples of ``first``: (multiples, positions)."""
    multiples, positions = [1], [first]
    spacing = first.copy()
    k, misses = 1, 0
    length = float(np.hypot(*first))
    while True:
        # small steps first, then geometric ones: the prediction error stays well below
        # the search radius because the spacing improves as 1 / k
        k = k + 1 if k < 4 else int(math.ceil(k * 1.5))
        predicted = k * spacing
        if not acf.inside(predicted[None])[0]:
            break
        pos, h = refine_peaks(acf, predicted[None], max(1.5, 0.1 * length))
        # the spacing may only be corrected a little: otherwise the walk could creep up the
        # flank of the central peak
        consistent = np.hypot(*(pos[0] / k - spacing)) <= 0.05 * length
        if h[0] >= MIN_RELATIVE_HEIGHT * height and consistent:
            multiples.append(k)
            positions.append(pos[0])
            spacing = pos[0] / k
            misses = 0
        else:
            misses += 1
            if misses >= 2:
                break
    return multiples, positions


def _angle(vector) -> float:
    return math.degrees(math.atan2(vector[0], vector[1]))


# -- the lattice the image holds -----------------------------------------------------------
def _reduced(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The shortest basis of the lattice spanned by ``a`` and ``b`` (Lagrange-Gauss)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if np.dot(a, a) > np.dot(b, b):
        a, b = b, a
    for _ in range(50):
        k = round(float(np.dot(a, b) / np.dot(a, a)))
        if k == 0:
            break
        b = b - k * a
        if np.dot(b, b) < np.dot(a, a):
            a, b = b, a
    return a, b


def _area(a, b) -> float:
    return abs(float(a[0] * b[1] - a[1] * b[0]))


def _angle_between(a, b) -> float:
    """Angle between two directions (degrees, 0-180)."""
    cos = np.dot(a, b) / (np.hypot(*a) * np.hypot(*b))
    return math.degrees(math.acos(float(np.clip(cos, -1, 1))))


def _repeats(shape, vector) -> float:
    """How many periods of ``vector`` the image spans along its direction."""
    unit = np.abs(np.asarray(vector, float)) / float(np.hypot(*vector))
    extent = unit[0] * shape[0] + unit[1] * shape[1]
    return float(extent / np.hypot(*vector))


def _finest_lattice(acf: Autocorrelation, starts: list, shape) -> Lattice:
    """The finest lattice the autocorrelation confirms, from pairs of candidate peaks.

    Every pair of non-collinear candidates spans a lattice; its shortest basis is checked
    against the whole autocorrelation (:func:`_confirm`). The confirmed lattice with the
    smallest cell wins (a coarser confirmed one is a sub-lattice of it).
    """
    tried, confirmed, best_failure = set(), [], None
    for i, a in enumerate(starts[:FIRST_DIRECTIONS]):
        for b in starts[i + 1 : CANDIDATES]:
            if abs(math.sin(math.radians(_angle_between(a, b)))) < math.sin(math.radians(25)):
                continue  # collinear: the same direction
            ra, rb = _reduced(a, b)
            key = tuple(np.round(np.concatenate([ra, rb]) / 0.5).astype(int))
            if key in tried:
                continue
            tried.add(key)
            lattice = _confirm(acf, ra, rb, shape)
            if lattice.found and lattice.quality >= MIN_QUALITY:
                confirmed.append(lattice)
            elif best_failure is None or lattice.quality > best_failure.quality:
                best_failure = lattice
    if not confirmed:
        return best_failure or Lattice(starts[0], reason="no two independent peak directions")
    finest = min(confirmed, key=lambda lat: (round(_area(*lat.vectors), 1), -lat.quality))
    return _finest(acf, finest, shape)


def _confirm(
    acf: Autocorrelation, a0: np.ndarray, b0: np.ndarray, shape, *, primitive: bool = True
) -> Lattice:
    """Walk both directions, check the whole lattice, fit it: the lattice found (``reason``
    says why not when it is not one).

    The autocorrelation must be lower half-way between lattice points along ``a``, along
    ``b`` and, for a ``primitive`` lattice, at the cell centres too: stripes give a
    "lattice" of points on their ridges whose cell centres lie on a ridge as well. (A
    lattice marked by the user may be a coarser one whose cell centres are peaks.)"""
    out = Lattice(a0)
    pos, h = refine_peaks(acf, np.array([a0, b0]), max(2.0, 0.15 * float(np.hypot(*a0))))
    if not np.all(np.isfinite(h)) or np.any(h <= 0):
        out.reason = "no peak at one of the two lattice directions"
        return out
    height = float(h.max())
    if h.min() < MIN_RELATIVE_HEIGHT * height:
        out.reason = "the second direction's peak is too weak"
        return out
    if min(np.hypot(*pos[0]), np.hypot(*pos[1])) < MIN_SPACING_PX:
        out.reason = "a lattice direction is the flank of the central peak"
        return out
    mult_a, pos_a = _walk(acf, pos[0], height)
    mult_b, pos_b = _walk(acf, pos[1], height)
    spacing_a, spacing_b = pos_a[-1] / mult_a[-1], pos_b[-1] / mult_b[-1]
    repeats = min(_repeats(shape, spacing_a), _repeats(shape, spacing_b))
    if repeats < MIN_REPEATS:
        out.reason = (
            f"the image spans only {repeats:.1f} periods along one lattice direction "
            f"(at least {MIN_REPEATS} are needed in each of two directions)"
        )
        return out
    walked = [(m, 0) for m in mult_a] + [(0, m) for m in mult_b]
    walked_pos = np.array(pos_a + pos_b)
    vectors0 = np.array([spacing_a, spacing_b])
    others = _lattice_points(acf, vectors0, set(walked))
    if len(others) < MIN_CHECK_POINTS:
        out.reason = (
            "too few repeats to confirm a lattice (the autocorrelation shows fewer than "
            f"{MIN_CHECK_POINTS} lattice points off the two directions)"
        )
        return out
    predicted = others @ vectors0
    radius = max(1.0, 0.05 * min(np.hypot(*spacing_a), np.hypot(*spacing_b)))
    found, heights = refine_peaks(acf, predicted, radius)
    # The same search half-way between lattice points, along each direction apart: on a
    # lattice both are lower; on stripes (one direction only) or column noise the
    # autocorrelation is a ridge along the other, as high half-way as on the "points".
    significances, betweens, contrasts = [], [], []
    for offset in (0.5 * spacing_a, 0.5 * spacing_b, 0.5 * (spacing_a + spacing_b)):
        between = refine_peaks(acf, predicted + offset, radius)[1]
        usable = np.isfinite(heights) & np.isfinite(between)
        contrast = heights[usable] - between[usable]
        significances.append(
            contrast.mean() / max(contrast.std(ddof=1), 1e-12) * math.sqrt(contrast.size)
            if contrast.size >= MIN_CHECK_POINTS
            else 0.0
        )
        betweens.append(between)
        contrasts.append(float(contrast.mean()) if contrast.size else 0.0)
    between = np.mean(betweens, axis=0)
    needed = max(MIN_SIGNIFICANCE, float(student_t.ppf(1 - FALSE_ALARM, len(others) - 1)))
    # significant, and large: a smooth ridge (stripes) differs by a hair, very regularly
    tested = 3 if primitive else 2
    if min(significances[:tested]) < needed or min(contrasts[:tested]) < MIN_CONTRAST * height:
        out.reason = (
            "the autocorrelation is not higher at the predicted lattice points than between "
            "them along both directions: no 2D periodic structure (noise, stripes, texture)"
        )
        return out
    usable = np.isfinite(heights) & np.isfinite(between)
    confirmed = (heights >= MIN_RELATIVE_HEIGHT * height) & (heights > between)
    quality = float(confirmed[usable].mean()) if usable.any() else 0.0
    indices = np.vstack([np.array(walked, float), others[confirmed]])
    points = np.vstack([walked_pos, found[confirmed]])
    vectors, residual, keep, covariance = _fit_lattice(acf, indices, points)
    return Lattice(
        vectors=vectors,
        residual=residual,
        covariance=covariance,
        quality=quality,
        significance=float(min(significances[:2])),
        intervals=(max(mult_a), max(mult_b)),
        points=points[keep],
        series=_series(indices[keep]),
        height=height,
        start=pos[0],
    )


def _finest(acf: Autocorrelation, lattice: Lattice, shape) -> Lattice:
    """A finer lattice hidden by the central peak's flank, when the autocorrelation holds
    one: peaks at fractions (i a + j b) / n of the cell (n = 2…5) that form a confirmed
    lattice with a smaller cell replace it."""
    a, b = lattice.vectors
    area = _area(a, b)
    fractions = [
        (i, j, n)
        for n in range(2, 6)
        for i in range(n)
        for j in range(n)
        if (i, j) != (0, 0) and math.gcd(math.gcd(i, j), n) == 1
    ]
    vectors = np.array([(i * a + j * b) / n for i, j, n in fractions])
    shifts = np.array([[0, 0], [1, 0], [0, 1], [1, 1]]) @ np.array([a, b])
    options = vectors[:, None, :] - shifts[None, :, :]
    vectors = options[np.arange(len(vectors)), np.argmin(np.hypot(*options.T).T, axis=1)]
    _, heights = refine_peaks(acf, vectors, 1.0)
    # points of a lattice are about equally high: a finer lattice's peaks match the coarse
    # one's (lower ones are sidelobes, or a sub-lattice's, which _period_lattice weighs)
    tall = np.flatnonzero(
        (heights >= FINER_PEAK_RATIO * lattice.height) & (np.hypot(*vectors.T) >= MIN_SPACING_PX)
    )
    for k in tall[np.argsort(np.hypot(*vectors[tall].T))]:
        # the finer lattice holds the coarse one: it is spanned by the new vector and the
        # shorter of a and b, reduced
        for other in (a, b):
            if abs(math.sin(math.radians(_angle_between(vectors[k], other)))) < 0.3:
                continue
            finer = _confirm(acf, *_reduced(vectors[k], other), shape)
            if not finer.found or finer.quality < max(
                MIN_QUALITY, lattice.quality - FINER_QUALITY_LOSS
            ):
                continue
            fa, fb = finer.vectors
            multiples = np.linalg.solve(np.array([fa, fb]).T, np.array([a, b]).T)
            whole = np.all(np.abs(multiples - np.rint(multiples)) < 0.1)
            if whole and _area(fa, fb) < 0.9 * area:
                return _finest(acf, finer, shape)
    return lattice


#: A sub-lattice is the image's period when the other points of the finest lattice are at
#: most this fraction as high as its own (a perovskite's B-site columns, catalase's weak
#: 8.75 nm planes): translations of the image repeat only on the sub-lattice.
SUBLATTICE_RATIO = 0.8


def _period_lattice(acf: Autocorrelation, lattice: Lattice, shape) -> tuple[Lattice, list[dict]]:
    """The lattice of the image's true period: the finest confirmed one, or the sub-lattice
    of index 2 or 4 whose points are clearly higher than the rest. Returns it and the
    finer alternatives it rejected."""
    rejected = []
    for _ in range(3):
        a, b = lattice.vectors
        indices = _lattice_points(acf, np.array([a, b]), set())
        if len(indices) < 2 * MIN_CHECK_POINTS:
            break
        radius = max(1.0, 0.05 * min(np.hypot(*a), np.hypot(*b)))
        heights = refine_peaks(acf, indices @ np.array([a, b]), radius)[1]
        usable = np.isfinite(heights)
        i, j, heights = indices[usable, 0], indices[usable, 1], heights[usable]
        choices = {
            "centred": (((i + j) % 2 == 0), (a + b, a - b), math.sqrt(2)),
            "doubled along the first direction": ((i % 2 == 0), (2 * a, b), 2.0),
            "doubled along the second direction": ((j % 2 == 0), (a, 2 * b), 2.0),
            "doubled along both": (((i % 2 == 0) & (j % 2 == 0)), (2 * a, 2 * b), 2.0),
            "tripled along the first direction": ((i % 3 == 0), (3 * a, b), 3.0),
            "tripled along the second direction": ((j % 3 == 0), (a, 3 * b), 3.0),
        }
        best = None
        for name, (member, basis, factor) in choices.items():
            inside, outside = heights[member], heights[~member]
            if inside.size < MIN_CHECK_POINTS or outside.size < MIN_CHECK_POINTS:
                continue
            ratio = float(np.median(outside) / max(np.median(inside), 1e-12))
            spread = np.sqrt(inside.var(ddof=1) / inside.size + outside.var(ddof=1) / outside.size)
            separated = (inside.mean() - outside.mean()) / max(spread, 1e-12)
            if (
                ratio <= SUBLATTICE_RATIO
                and separated >= MIN_SIGNIFICANCE
                and (best is None or ratio < best[0])
            ):
                best = (ratio, name, basis, factor)
        if best is None:
            break
        ratio, name, basis, factor = best
        coarse = _confirm(acf, *_reduced(*basis), shape)
        if not coarse.found or coarse.quality < MIN_QUALITY:
            break
        rejected.append(
            {
                "spacings": tuple(float(np.hypot(*v)) for v in (a, b)),
                "ratio": ratio,
                "name": name,
                "factor": factor,
            }
        )
        lattice = coarse
    return lattice, rejected


def _lattice_points(acf: Autocorrelation, vectors: np.ndarray, exclude: set) -> np.ndarray:
    """Lattice indices (i, j) whose lags lie inside the valid region (at most a few hundred).

    A random sample when there are more: a regular stride would visit a sub-lattice only
    and could confirm a lattice that is too fine.
    """
    oy, ox = acf.origin
    reach = np.hypot(oy, ox)
    n = [int(reach / np.hypot(*v)) + 1 for v in vectors]
    ii, jj = np.meshgrid(np.arange(-n[0], n[0] + 1), np.arange(-n[1], n[1] + 1), indexing="ij")
    indices = np.stack([ii.ravel(), jj.ravel()], axis=1)
    keep = [
        (i, j) != (0, 0) and (i, j) not in exclude and (-i, -j) not in exclude for i, j in indices
    ]
    indices = indices[np.array(keep, bool)]
    indices = indices[acf.inside(indices @ vectors, margin=3)]
    if len(indices) > MAX_LATTICE_POINTS:
        rng = np.random.default_rng(0)  # reproducible results
        indices = indices[np.sort(rng.choice(len(indices), MAX_LATTICE_POINTS, replace=False))]
    return indices.astype(float)


def _fit_lattice(acf: Autocorrelation, indices: np.ndarray, points: np.ndarray):
    """Weighted least-squares lattice vectors; far peaks (high envelope·distance) weigh most.

    Returns the vectors (rows a, b), the RMS residual, the peaks kept and the covariance
    of the four vector components (order a_y, b_y, a_x, b_x).
    """
    index = np.rint(points + acf.origin).astype(int)
    weight = acf.envelope[index[:, 0], index[:, 1]].astype(float) ** 2
    keep = np.ones(len(points), bool)
    for _ in range(2):  # one pass of outlier rejection
        w = np.sqrt(weight[keep])[:, None]
        vectors, *_ = np.linalg.lstsq(indices[keep] * w, points[keep] * w, rcond=None)
        misfit = np.hypot(*(indices @ vectors - points).T)
        keep = misfit <= max(1.0, 3 * float(np.sqrt(np.mean(misfit[keep] ** 2))))
    residual = float(np.sqrt(np.mean(misfit[keep] ** 2)))
    design = indices[keep] * np.sqrt(weight[keep])[:, None]
    n = int(keep.sum())
    # residual variance per coordinate (weighted), floored at a tenth of a pixel: peaks
    # are located to about that on a noise-free lattice
    resid = (indices[keep] @ vectors - points[keep]) * np.sqrt(weight[keep])[:, None]
    variance = max(float((resid**2).sum()) / max(2 * (n - 2), 1), 0.01 * float(weight[keep].mean()))
    inverse = np.linalg.pinv(design.T @ design)
    covariance = np.zeros((4, 4))
    covariance[:2, :2] = covariance[2:, 2:] = variance * inverse
    return vectors, residual, keep, covariance


def _series(indices: np.ndarray) -> np.ndarray:
    series = np.full(len(indices), 2)
    series[indices[:, 1] == 0] = 0
    series[(indices[:, 0] == 0) & (indices[:, 1] != 0)] = 1
    return series


def _orient_square(a, b, intervals, series):
    """A square lattice's first direction: the one of ±a, ±b within (-45°, 45°]."""
    options = [
        (a, b, intervals, False),
        (b, -a, intervals[::-1], True),
        (-a, -b, intervals, False),
        (-b, a, intervals[::-1], True),
    ]
    for first, second, counted, swapped in options:
        if -45 < _angle(first) <= 45:
            if swapped:
                series = np.where(series == 2, 2, 1 - series)
            return first, second, counted, series
    return a, b, intervals, series
