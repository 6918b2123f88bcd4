"""Series as SerialEM records them, simulated with known matrices, drift and noise.

The specimen is a sum of Gaussian particles (random positions, sizes and weights) or a
lattice of them, evaluated exactly at every shifted pixel: no interpolation stands between
the true shift and the image. An image's content sits at ``M · (setting − first setting) +
drift(t)`` unbinned px of the stored array (col, row); binning averages the unbinned
pixels; counts are Poisson. The series is written as an MRC stack (mrcfile) with the
``.mdoc`` SerialEM writes beside it (plain text in its layout).

Pure NumPy: no Qt, no napari.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InvalidParameterError

__all__ = ["SimulatedSeries", "simulate_series", "write_series", "specimen"]


@dataclass
class SimulatedSeries:
    """What was simulated: the stored images and each image's ``.mdoc`` keys."""

    images: np.ndarray
    sections: list[dict]
    truth: dict = field(default_factory=dict)


def specimen(rng, extent: float, *, periodic: float | None = None, n: int | None = None):
    """Particles ``(x, y, sigma, weight)`` over a square of ``extent`` unbinned px centred
    on 0: random ones, or a lattice of period ``periodic`` px."""
    if periodic:
        k = int(extent / periodic) + 1
        grid = (np.arange(-k, k + 1) * periodic).astype(float)
        x, y = np.meshgrid(grid, grid)
        x, y = x.ravel(), y.ravel()
        sigma = np.full(x.size, periodic / 6)
        weight = np.ones(x.size)
    else:
        count = n or int(extent**2 / 900)
        x = rng.uniform(-extent / 2, extent / 2, count)
        y = rng.uniform(-extent / 2, extent / 2, count)
        sigma = rng.uniform(1.5, 6.0, count)
        weight = rng.uniform(0.3, 1.0, count)
    return np.column_stack([x, y, sigma, weight])


def _render(particles, shape_unbinned, offset_col_row, binning: int) -> np.ndarray:
    """Specimen density on the unbinned grid (rows, cols) with the content displaced by
    ``offset`` (col, row), averaged into ``binning`` x ``binning`` pixels."""
    ny, nx = shape_unbinned
    cy, cx = (ny - 1) / 2, (nx - 1) / 2
    out = np.zeros((ny, nx))
    rows = np.arange(ny, dtype=float)
    cols = np.arange(nx, dtype=float)
    for x, y, sigma, weight in particles:
        pc, pr = x + cx + offset_col_row[0], y + cy + offset_col_row[1]
        reach = 4 * sigma
        r0, r1 = int(max(pr - reach, 0)), int(min(pr + reach + 1, ny))
        c0, c1 = int(max(pc - reach, 0)), int(min(pc + reach + 1, nx))
        if r0 >= r1 or c0 >= c1:
            continue
        gy = np.exp(-((rows[r0:r1] - pr) ** 2) / (2 * sigma**2))
        gx = np.exp(-((cols[c0:c1] - pc) ** 2) / (2 * sigma**2))
        out[r0:r1, c0:c1] += weight * np.outer(gy, gx)
    if binning > 1:
        out = out.reshape(ny // binning, binning, nx // binning, binning).mean(axis=(1, 3))
    return out


def rotation_matrix(scale: float, angle_deg: float, *, skew: float = 0.0) -> np.ndarray:
    """``[[dcol/dx, dcol/dy], [drow/dx, drow/dy]]`` of a scale, a rotation and a skew."""
    a = math.radians(angle_deg)
    return scale * np.array(
        [[math.cos(a), -math.sin(a) * (1 + skew)], [math.sin(a), math.cos(a) * (1 + skew)]]
    )


def simulate_series(
    matrix,
    *,
    setting: str = "image_shift",
    shape=(256, 256),
    binning: int = 1,
    step: float = 0.25,
    moves=None,
    drift_px_per_s=(0.3, -0.2),
    drift_curvature=0.01,
    seconds_per_record: float = 3.0,
    counts: float = 300.0,
    stage_error_um: float = 0.0,
    stage_error_period_um: float = 1.0,
    periodic: float | None = None,
    defocus_um: float = 0.0,
    mag_index: int = 20,
    magnification: float = 22500.0,
    camera: int = 1,
    spot: int = 7,
    probe_mode: int = 1,
    intensity: float = 0.4,
    exposure_s: float = 0.5,
    seed: int = 0,
    start_time_s: float = 1.7e9,
    particles=None,
) -> SimulatedSeries:
    """A series recorded while ``setting`` changes.

    Parameters
    ----------
    matrix : (2, 2) array
        Unbinned px of the stored array per unit of the setting
        (``[[dcol/dx, dcol/dy], [drow/dx, drow/dy]]``).
    setting : {"image_shift", "stage"}
    shape : (int, int)
        Stored (binned) image shape.
    step : float
        Image shift: the size of the ±x and ±y moves, in setting units, of SerialEM's
        nine-record pattern (every other record unshifted).
    moves : (n, 2) array, optional
        The settings of the records relative to the first (overrides the pattern).
    drift_px_per_s, drift_curvature
        Drift (col, row) unbinned px per second, and its change (px/s²).
    stage_error_um, stage_error_period_um
        A periodic stage error: the stage sits ``amplitude · sin(2π x / period)`` from
        where its readout says, on each axis.
    periodic : float, optional
        A lattice specimen of this period (unbinned px) instead of random particles.
    """
    if setting not in ("image_shift", "stage"):
        raise InvalidParameterError(f"setting must be image_shift or stage, not {setting!r}")
    rng = np.random.default_rng(seed)
    matrix = np.asarray(matrix, dtype=float)
    if moves is None:
        pattern = [(0, 0), (1, 0), (0, 0), (-1, 0), (0, 0), (0, 1), (0, 0), (0, -1), (0, 0)]
        moves = np.asarray(pattern, dtype=float) * step
    moves = np.asarray(moves, dtype=float)
    base = np.array([0.12, -0.35]) if setting == "image_shift" else np.array([12.5, -40.25])
    unbinned = (shape[0] * binning, shape[1] * binning)
    extent = max(unbinned) * 1.6 + float(np.abs(moves @ matrix.T).max()) * 2
    if particles is None:
        particles = specimen(rng, extent, periodic=periodic)
    images, sections = [], []
    drift = np.asarray(drift_px_per_s, dtype=float)
    for k, move in enumerate(moves):
        t = k * seconds_per_record + rng.uniform(-0.2, 0.2) * (k > 0)
        true_move = move.copy()
        if setting == "stage" and stage_error_um:
            position = base + move
            true_move = move + stage_error_um * (
                np.sin(2 * np.pi * position / stage_error_period_um)
                - np.sin(2 * np.pi * base / stage_error_period_um)
            )
        offset = matrix @ true_move + drift * t + drift_curvature * t**2 * np.array([1, 1])
        density = _render(particles, unbinned, offset, binning)
        expected = counts * binning**2 * (0.4 + density / max(density.max(), 1e-9))
        image = rng.poisson(expected).astype(np.float32)
        images.append(image)
        value = base + move
        section = {
            "ZValue": k,
            "TiltAngle": 0.002,
            "StagePosition": tuple(value) if setting == "stage" else (12.5, -40.25),
            "StageZ": 3.1,
            "Magnification": magnification,
            "Intensity": intensity,
            "SpotSize": spot,
            "ProbeMode": probe_mode,
            "Defocus": defocus_um,
            "ImageShift": tuple(value) if setting == "image_shift" else (0.12, -0.35),
            "RotationAngle": 86.3,
            "ExposureTime": exposure_s,
            "Binning": binning,
            "CameraIndex": camera,
            "DividedBy2": 0,
            "MagIndex": mag_index,
            "MinMaxMean": (float(image.min()), float(image.max()), float(image.mean())),
            "TimeStamp": start_time_s + t,
        }
        sections.append(section)
    return SimulatedSeries(
        np.asarray(images),
        sections,
        {"matrix": matrix.tolist(), "setting": setting, "binning": binning},
    )


def intensity_series(
    intensities,
    *,
    current_at,
    binning: int = 2,
    exposure_s=0.5,
    shape=(64, 64),
    dead_time_s: float = 0.0,
    seed: int = 0,
    **keys,
) -> SimulatedSeries:
    """Blank (no specimen) images whose counts follow ``current_at(intensity)`` counts
    per unbinned px per s, for beam-intensity and dead-time series; ``exposure_s`` may
    be one value or one per image."""
    rng = np.random.default_rng(seed)
    intensities = np.atleast_1d(np.asarray(intensities, dtype=float))
    exposures = np.broadcast_to(np.asarray(exposure_s, dtype=float), intensities.shape)
    images, sections = [], []
    for k, (intensity, exposure) in enumerate(zip(intensities, exposures, strict=True)):
        rate = float(current_at(intensity))
        expected = rate * binning**2 * max(exposure - dead_time_s, 0.0)
        image = rng.poisson(np.full(shape, expected)).astype(np.float32)
        images.append(image)
        sections.append(
            {
                "ZValue": k,
                "StagePosition": (1.0, 2.0),
                "Magnification": keys.get("magnification", 22500.0),
                "Intensity": float(intensity),
                "SpotSize": keys.get("spot", 7),
                "ProbeMode": keys.get("probe_mode", 1),
                "Defocus": 0.0,
                "ImageShift": (0.0, 0.0),
                "ExposureTime": float(exposure),
                "Binning": binning,
                "CameraIndex": keys.get("camera", 1),
                "DividedBy2": 0,
                "MagIndex": keys.get("mag_index", 20),
                "MinMaxMean": (float(image.min()), float(image.max()), float(image.mean())),
                "TimeStamp": 1.7e9 + 2.0 * k,
            }
        )
    return SimulatedSeries(np.asarray(images), sections, {})


def _format(value) -> str:
    if isinstance(value, tuple):
        return " ".join(_format(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}" if abs(value) >= 1e5 or value == int(value) else f"{value:.6g}"
    return str(value)


def mdoc_text(series: SimulatedSeries, image_file: str) -> str:
    """The ``.mdoc`` SerialEM writes for a stack: global keys, titles, one
    ``[ZValue = n]`` section per image."""
    ny, nx = series.images.shape[1:]
    lines = [
        "PixelSpacing = 3.42",
        f"ImageFile = {image_file}",
        f"ImageSize = {nx} {ny}",
        "DataMode = 2",
        "",
        "[T = SerialEM: Digitized on a simulated microscope   07-Dec-26  21:00:00    ]",
        "",
    ]
    for section in series.sections:
        lines.append(f"[ZValue = {section['ZValue']}]")
        for key, value in section.items():
            if key == "ZValue":
                continue
            if key == "TimeStamp":
                value = float(value)
                lines.append(f"TimeStamp = {value:.3f}")
                continue
            lines.append(f"{key} = {_format(value)}")
        lines.append("")
    return "\n".join(lines)


def write_series(series: SimulatedSeries, path) -> Path:
    """Write ``STACK.mrc`` and ``STACK.mrc.mdoc``; the stack's path."""
    import mrcfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(np.asarray(series.images, dtype=np.float32))
    path.with_name(path.name + ".mdoc").write_text(mdoc_text(series, path.name))
    return path


#: The sample series' image-shift matrix (unbinned px of the stored array per IS unit).
SAMPLE_MATRIX = ((153.2, -118.6), (121.9, 149.7))


def sample_series(folder) -> Path:
    """The sample: a nine-record image-shift calibration series (binning 2, drift and
    Poisson noise) written as ``image_shift.mrc`` with its ``.mdoc`` into ``folder``; its
    truth is :data:`SAMPLE_MATRIX`."""
    series = simulate_series(np.asarray(SAMPLE_MATRIX), binning=2, seed=35, shape=(256, 256))
    return write_series(series, Path(folder) / "image_shift.mrc")
