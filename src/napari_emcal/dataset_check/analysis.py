"""Virtual apertures, centre of mass, beam centre and descan of a 4D STEM dataset.

One pass over the data (:func:`analyse`) gives, per scan position: the sum under every
aperture mask, the total counts, the centre of mass, the bright-field disk's centre,
whether the disk reaches the detector edge and how many pixels are saturated; plus the
sum of all frames. The per-block kernel (:func:`frame_sums`) is separate from the
bookkeeping (:class:`DatasetPass`), so the same code runs on blocks of a memmap, of a Dask
array, or of a LiberTEM partition.

Pure computation (numpy/scipy).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..engine import Buffer, FramePass, run_pass, validate_4d
from ..engine.descan import Descan, fit_descan  # shared with the overfocus twin
from ..errors import CalibrationFailedError, InvalidDataError, InvalidParameterError
from ..geometry import rotation_flip_matrix

__all__ = [
    "BeamDisk",
    "Descan",
    "PassResult",
    "DatasetPass",
    "analyse",
    "estimate_beam",
    "find_beam",
    "fit_descan",
    "frame_sums",
]


# -- the bright-field disk ------------------------------------------------------------------
@dataclass(frozen=True)
class BeamDisk:
    """The bright-field disk on the detector: centre (cy, cx) and radius, detector pixels."""

    cy: float
    cx: float
    radius: float

    @property
    def centre(self) -> tuple[float, float]:
        return (self.cy, self.cx)


def find_beam(aperture_sum) -> BeamDisk:
    """The bright-field disk of a mean or summed diffraction pattern, to a fraction of a pixel.

    The disk is the connected bright region above half-way between the background and the
    disk's level; its edge is then located along 90 rays at the half-height crossing and a
    circle is fitted to those points by least squares.

    Raises
    ------
    InvalidDataError
        Not a finite 2D image.
    CalibrationFailedError
        No bright disk stands out (uniform or empty pattern).
    """
    image = np.asarray(aperture_sum, dtype=float)
    if image.ndim != 2 or not np.isfinite(image).all():
        raise InvalidDataError("the aperture sum must be a finite 2D image")
    # hot pixels (single bright pixels) are not a disk: a 3x3 median removes them
    smooth = ndimage.gaussian_filter(ndimage.median_filter(image, size=3), 1.0)
    background, top = np.percentile(smooth, 10), np.percentile(smooth, 99.9)
    if not top > background * 1.5 + 1e-12:
        raise CalibrationFailedError("no bright-field disk stands out in the summed frames")
    half = (background + top) / 2
    labels, count = ndimage.label(smooth > half)
    if count == 0:
        raise CalibrationFailedError("no bright-field disk found in the summed frames")
    sizes = ndimage.sum_labels(np.ones_like(smooth), labels, index=np.arange(1, count + 1))
    region = labels == (1 + int(np.argmax(sizes)))
    _check_disk(image, region)
    cy, cx = ndimage.center_of_mass(region)
    radius = math.sqrt(region.sum() / math.pi)
    # sub-pixel: the half-height crossing along rays from the rough centre
    angles = np.linspace(0, 2 * np.pi, 90, endpoint=False)
    steps = np.arange(0, 2.0 * radius + 3, 0.25)
    ys = cy + np.outer(np.sin(angles), steps)
    xs = cx + np.outer(np.cos(angles), steps)
    profiles = ndimage.map_coordinates(smooth, [ys, xs], order=1, mode="nearest")
    points = []
    for ray, profile in enumerate(profiles):
        below = np.flatnonzero(profile < half)
        if len(below) == 0 or below[0] == 0:
            continue
        i = below[0]
        t = (profile[i - 1] - half) / (profile[i - 1] - profile[i])
        r = steps[i - 1] + t * (steps[i] - steps[i - 1])
        y, x = cy + r * math.sin(angles[ray]), cx + r * math.cos(angles[ray])
        if 0 < y < image.shape[0] - 1 and 0 < x < image.shape[1] - 1:  # not cut by the edge
            points.append((y, x))
    if len(points) >= 12:
        cy, cx, radius = _fit_circle(np.asarray(points))
    return BeamDisk(float(cy), float(cx), float(radius))


#: A bright-field disk covers at least this many detector pixels and at most this fraction
#: of the detector, is this many times brighter than its surroundings, stands out of their
#: noise by this many standard deviations, and fills this fraction of its circle (a
#: printed digit or a detector test pattern does not).
MIN_DISK_PIXELS = 20
MAX_DISK_FRACTION = 0.9
MIN_DISK_CONTRAST = 2.0
MIN_DISK_SIGNIFICANCE = 10.0
MIN_DISK_ROUNDNESS = 0.75


def _check_disk(image: np.ndarray, region: np.ndarray) -> None:
    """Raise CalibrationFailedError unless ``region`` is a plausible bright-field disk."""
    area = int(region.sum())
    if area < MIN_DISK_PIXELS:
        raise CalibrationFailedError(
            f"no bright-field disk: the brightest region covers only {area} detector pixels "
            "(hot pixels or scattered counts, no beam)"
        )
    if area > MAX_DISK_FRACTION * region.size:
        raise CalibrationFailedError(
            "no bright-field disk: the bright region fills the detector (no edge to find)"
        )
    cy, cx = ndimage.center_of_mass(region)
    radius = math.sqrt(area / math.pi)
    yy, xx = np.indices(region.shape)
    circle = np.hypot(yy - cy, xx - cx) <= radius
    roundness = (region & circle).sum() / max(circle.sum(), 1)
    if roundness < MIN_DISK_ROUNDNESS:
        raise CalibrationFailedError(
            f"no bright-field disk: the bright region is not round (it fills {roundness:.0%} "
            "of its circle): a pattern, not the beam"
        )
    ring = (np.hypot(yy - cy, xx - cx) > 1.5 * radius) & (np.hypot(yy - cy, xx - cx) < 3 * radius)
    outside = image[ring] if ring.sum() >= MIN_DISK_PIXELS else image[~circle]
    inside = image[region]
    spread = max(float(outside.std()), math.sqrt(max(float(outside.mean()), 1.0)), 1e-12)
    significance = (inside.mean() - outside.mean()) / spread
    if (
        inside.mean() < MIN_DISK_CONTRAST * max(outside.mean(), 1e-12)
        and (significance < MIN_DISK_SIGNIFICANCE)
        or significance < 3
    ):
        raise CalibrationFailedError(
            f"no bright-field disk: the brightest round region is {inside.mean():.3g} counts "
            f"against {outside.mean():.3g} around it ({significance:.1f} standard deviations)"
        )


def _fit_circle(points: np.ndarray) -> tuple[float, float, float]:
    """Least-squares circle through points (y, x): the algebraic (Kåsa) fit."""
    y, x = points.T
    a = np.column_stack([2 * y, 2 * x, np.ones_like(y)])
    (cy, cx, c), *_ = np.linalg.lstsq(a, y**2 + x**2, rcond=None)
    return cy, cx, math.sqrt(max(c + cy**2 + cx**2, 0.0))


def estimate_beam(data, frames: int = 64) -> BeamDisk:
    """The disk from a few frames spread over the scan (reads only those frames)."""
    (sy, sx), _ = validate_4d(data)
    count = min(frames, sy * sx)
    flat = np.unique(np.linspace(0, sy * sx - 1, count).astype(int))
    total = None
    for index in flat:
        frame = np.asarray(data[index // sx, index % sx], dtype=float)
        if not np.isfinite(frame).all():
            continue  # a frame with NaN or inf says nothing about the disk (reported apart)
        total = frame if total is None else total + frame
    if total is None:
        raise CalibrationFailedError("every frame read holds NaN or infinite values")
    return find_beam(total)


# -- one pass ---------------------------------------------------------------------------------
def frame_sums(frames: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted sums of every frame: ``frames (n, dy, dx)`` against ``weights (dy·dx, k)``.

    The kernel of the pass: one matrix product gives all aperture sums, the total counts
    and the centre-of-mass moments of a block of frames at once.
    """
    n = frames.shape[0]
    flat = frames.reshape(n, -1)
    # converted to float64 a few MB at a time: a whole block would take 4-8x its memory
    step = max(1, (8 * 2**20) // (8 * flat.shape[1]))
    out = np.empty((n, weights.shape[1]))
    for start in range(0, n, step):
        out[start : start + step] = flat[start : start + step].astype(np.float64) @ weights
    return out


@dataclass
class PassResult:
    """What one pass gives (scan-shaped maps unless said otherwise).

    Attributes
    ----------
    images : dict of str to ndarray
        The virtual aperture images, by aperture name.
    total : ndarray
        Counts per frame.
    com_y, com_x : ndarray
        Centre of mass relative to the beam centre, detector pixels, turned into scan
        directions by ``R(scan_rotation)·F`` (docs/conventions.md), NaN for empty frames.
    disk_cy, disk_cx : ndarray or None
        Bright-field disk centre per frame (detector pixels), when a disk was given.
    touches_edge : ndarray of bool or None
        Whether the disk reaches the detector edge in that frame.
    saturated : ndarray or None
        Saturated pixels per frame, when the saturation count is known.
    aperture_sum : ndarray
        The sum of all frames (detector shape).
    beam : BeamDisk or None
        The disk the pass used.
    """

    images: dict[str, np.ndarray]
    total: np.ndarray
    com_y: np.ndarray
    com_x: np.ndarray
    aperture_sum: np.ndarray
    disk_cy: np.ndarray | None = None
    disk_cx: np.ndarray | None = None
    touches_edge: np.ndarray | None = None
    saturated: np.ndarray | None = None
    beam: BeamDisk | None = None
    detector_shape: tuple[int, int] = (0, 0)
    max_count: float | None = None
    #: the R(θ)·F the centre of mass was turned by
    rotation: np.ndarray | None = None


def pass_weights(
    detector_shape, masks: Mapping[str, np.ndarray], beam: BeamDisk | None
) -> np.ndarray:
    """The columns the kernel multiplies frames with: the masks, then ones, y and x (counts
    and centre of mass), then, with a beam, the disk window, its y and x moments, and the
    reachable border and the disk's inside as means (edge contact)."""
    yy, xx = np.mgrid[: detector_shape[0], : detector_shape[1]].astype(float)
    columns = [np.asarray(mask, float).ravel() for mask in masks.values()]
    columns += [np.ones(yy.size), yy.ravel(), xx.ravel()]
    if beam is not None:
        # the disk's own centre: CoM inside a window that follows a moderate descan
        window = np.hypot(yy - beam.cy, xx - beam.cx) <= beam.radius + max(0.5 * beam.radius, 3)
        # the detector's outermost pixels that the disk could reach
        border = np.zeros(detector_shape, bool)
        border[[0, -1], :] = border[:, [0, -1]] = True
        border &= window
        inside = np.hypot(yy - beam.cy, xx - beam.cx) <= beam.radius
        columns += [
            window.ravel(),
            (window * yy).ravel(),
            (window * xx).ravel(),
            border.ravel() / max(border.sum(), 1),
            inside.ravel() / max(inside.sum(), 1),
        ]
    return np.stack(columns, axis=1)


def finish_pass(
    sums: np.ndarray,
    saturated,
    aperture_sum: np.ndarray,
    names,
    *,
    beam: BeamDisk | None,
    max_count,
    rotation: np.ndarray,
) -> PassResult:
    """The :class:`PassResult` of the accumulated weighted sums ``(scan_y, scan_x, k)``."""
    m = len(names)
    detector_shape = tuple(aperture_sum.shape)
    images = {name: sums[..., i] for i, name in enumerate(names)}
    total = sums[..., m]
    origin = (
        (beam.cy, beam.cx)
        if beam is not None
        else ((detector_shape[0] - 1) / 2, (detector_shape[1] - 1) / 2)
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        dy = sums[..., m + 1] / total - origin[0]
        dx = sums[..., m + 2] / total - origin[1]
    com = np.einsum("ij,jyx->iyx", rotation, np.stack([dy, dx]))
    result = PassResult(
        images=images,
        total=total,
        com_y=com[0],
        com_x=com[1],
        aperture_sum=aperture_sum,
        beam=beam,
        detector_shape=detector_shape,
        max_count=max_count,
        saturated=saturated,
        rotation=rotation,
    )
    if beam is not None:
        window, wy, wx, border_mean, inside_mean = (sums[..., m + 3 + i] for i in range(5))
        with np.errstate(invalid="ignore", divide="ignore"):
            result.disk_cy = np.where(window > 0, wy / window, np.nan)
            result.disk_cx = np.where(window > 0, wx / window, np.nan)
            result.touches_edge = border_mean > EDGE_FRACTION * inside_mean
    return result


class DatasetPass(FramePass):
    """The dataset pass as the engine runs it (in this process or as a LiberTEM UDF).

    Parameters
    ----------
    masks : mapping of str to bool array, optional
        Aperture masks (detector shape), by name.
    beam : BeamDisk, optional
        The bright-field disk: gives the centre of mass its origin, and per-frame disk
        centres and edge contact. Without it the CoM is relative to the detector centre.
    max_count : float, optional
        The count at which a pixel saturates; per-frame saturated pixels are counted.
    scan_rotation, flip_y
        Turn the centre of mass into scan directions (docs/conventions.md's ``R(θ)·F``).
    """

    def __init__(
        self,
        *,
        masks: Mapping[str, np.ndarray] | None = None,
        beam: BeamDisk | None = None,
        max_count: float | None = None,
        scan_rotation: float = 0.0,
        flip_y: bool = False,
    ):
        self.masks = dict(masks or {})
        self.beam, self.max_count = beam, max_count
        self.rotation = rotation_flip_matrix(scan_rotation, flip_y)

    def buffers(self, scan_shape, detector_shape):
        columns = len(self.masks) + 3 + (5 if self.beam is not None else 0)
        declared = {"sums": Buffer("nav", (columns,)), "aperture_sum": Buffer("sig")}
        if self.max_count is not None:
            declared["saturated"] = Buffer("nav")
        return declared

    def prepare(self, scan_shape, detector_shape):
        return pass_weights(detector_shape, check_masks(self.masks, detector_shape), self.beam)

    def process(self, buffers, frames, scan_y, scan_x, task):
        buffers["sums"][:] = frame_sums(frames, task)
        if self.max_count is not None:
            buffers["saturated"][:] = (frames >= self.max_count).sum(axis=(1, 2))
        buffers["aperture_sum"][:] += frames.sum(axis=0, dtype=np.float64)

    def finish(self, buffers, scan_shape, detector_shape, task):
        return finish_pass(
            buffers["sums"],
            buffers.get("saturated"),
            buffers["aperture_sum"],
            list(self.masks),
            beam=self.beam,
            max_count=self.max_count,
            rotation=self.rotation,
        )


def check_masks(masks, detector_shape) -> dict[str, np.ndarray]:
    masks = dict(masks or {})
    for name, mask in masks.items():
        if np.shape(mask) != tuple(detector_shape):
            raise InvalidParameterError(
                f"aperture {name!r} has shape {np.shape(mask)}; the "
                f"detector is {tuple(detector_shape)}"
            )
    return masks


#: The disk reaches the edge when the border pixels' mean exceeds this fraction of the
#: mean inside the disk (scattered intensity alone stays far below it).
EDGE_FRACTION = 0.25


def analyse(
    data,
    *,
    masks: Mapping[str, np.ndarray] | None = None,
    beam: BeamDisk | None = None,
    max_count: float | None = None,
    scan_rotation: float = 0.0,
    flip_y: bool = False,
    progress: Callable[[float], object] | None = None,
    executor: str | None = None,
) -> PassResult:
    """Virtual aperture images, centre of mass, disk centres and counts in one pass.

    Parameters
    ----------
    data : array_like (scan_y, scan_x, det_y, det_x)
        NumPy array, memmap or Dask array; read block by block.
    masks, beam, max_count, scan_rotation, flip_y
        As for :class:`DatasetPass`.
    progress : callable, optional
        Called with the fraction done after each block; may raise
        :class:`~napari_emcal.errors.Cancelled`.
    executor : str, optional
        ``"local"`` (default: in this process), ``"inline"``, ``"threads"`` or a dask
        scheduler address (see :mod:`napari_emcal.engine`); ``data`` may then also be a
        file path, read by the workers.
    """
    pass_ = DatasetPass(
        masks=masks, beam=beam, max_count=max_count, scan_rotation=scan_rotation, flip_y=flip_y
    )
    return run_pass(data, pass_, executor=executor, progress=progress)
