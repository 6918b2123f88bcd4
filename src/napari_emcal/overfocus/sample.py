"""The overfocus sample: simulated overfocused 4D STEM of a cross grating, with its
ground truth (recipe ``sample_data/overfocus_grating.json``).

The frames are computed one scan row at a time, in NumPy, when first read, and kept: the
napari sample is a lazy Dask array (:func:`overfocus_grating_lazy`) whose first frames
show at once, without waiting for the whole dataset or for a numba kernel to compile
(opening it on a new machine must not freeze the window); :func:`overfocus_grating` is
the same data in one array. Each row's Poisson noise has its own seed, so a row is the
same whichever order the rows are read in.
"""

from __future__ import annotations

import threading
from functools import cached_property, lru_cache
from typing import Any

import numpy as np

from ..specimens import grating_specimen, sample_recipe
from .twin import TwinParams

__all__ = ["OverfocusSample", "overfocus_grating", "overfocus_grating_lazy"]


class OverfocusSample:
    """The sample's recipe, its frames computed by scan row on first read and kept.

    Frame ``[sy, sx]`` pixel ``d`` shows the specimen at ``t = s + M (d − c)`` (scan
    pixels, bilinear interpolation, the mapping of :func:`~.simulate.simulate`); pixels
    outside the bright-field disk are 0; points outside the specimen see its mean.
    Counts are Poisson with mean ``scale`` × transmission, where ``scale`` makes a frame
    of a specimen of uniform (mean) transmission hold the recipe's
    ``dose_electrons_per_frame`` electrons (a constant known before any frame is
    computed, so that each row can be computed alone).
    """

    def __init__(self, name: str = "overfocus_grating"):
        recipe = sample_recipe(name)
        self.recipe = recipe
        self.truth = TwinParams.from_json_dict(recipe["twin"])
        spec = recipe["specimen"]
        self.specimen = grating_specimen(
            tuple(spec["shape"]),
            period=spec["period_px"],
            line_width=spec["line_width_px"],
            angle_deg=spec["angle_deg"],
            particles=spec["particles"],
            seed=spec["seed"],
        ).astype(np.float64)
        self.scan_shape = tuple(recipe["scan_shape"])
        self.detector_shape = tuple(recipe["detector_shape"])
        self.shape = self.scan_shape + self.detector_shape
        self.dtype = np.dtype(np.uint16)
        mask = self.truth.bright_field_mask(self.detector_shape)
        self.mask = np.ones(self.detector_shape, bool) if mask is None else mask
        self.background = float(self.specimen.mean())
        dose = float(recipe["dose_electrons_per_frame"])
        self.scale = dose / (self.background * float(self.mask.sum()))
        self._rows: dict[int, np.ndarray] = {}
        self._lock = threading.Lock()

    @cached_property
    def _offsets(self) -> tuple[np.ndarray, np.ndarray]:
        """``M (d − c)`` of every illuminated detector pixel (scan pixels), and their
        flat indices in a frame."""
        dy, dx = np.nonzero(self.mask)
        matrix = self.truth.matrix
        ry, rx = dy - self.truth.cy, dx - self.truth.cx
        offset = np.stack(
            [matrix[0, 0] * ry + matrix[0, 1] * rx, matrix[1, 0] * ry + matrix[1, 1] * rx]
        )
        return offset, dy * self.detector_shape[1] + dx

    def row(self, sy: int) -> np.ndarray:
        """The frames of scan row ``sy``, shape (scan x, detector y, detector x), read-only."""
        found = self._rows.get(sy)
        if found is not None:
            return found
        frames = self._compute_row(sy)  # outside the lock: rows compute side by side
        with self._lock:
            return self._rows.setdefault(sy, frames)

    def transmission(self, sy: int) -> np.ndarray:
        """Noise-free transmission of scan row ``sy`` at the illuminated detector pixels,
        shape (scan x, illuminated pixels), float64."""
        (off_y, off_x), _flat = self._offsets
        h, w = self.specimen.shape
        # the scan centred on the specimen, as simulate.scan_origin_in_specimen places it
        # (not imported: simulate imports numba, which the sample must open without)
        oy, ox = ((n - (m - 1) - 1) // 2 for n, m in zip(self.specimen.shape, self.scan_shape))
        sx = np.arange(self.scan_shape[1], dtype=np.float64)[:, None]
        ty = oy + sy + off_y[None, :] + np.zeros_like(sx)
        tx = ox + sx + off_x[None, :]
        iy, ix = np.floor(ty).astype(np.intp), np.floor(tx).astype(np.intp)
        fy, fx = ty - iy, tx - ix
        inside = (iy >= 0) & (ix >= 0) & (iy + 1 < h) & (ix + 1 < w)
        iy, ix = np.where(inside, iy, 0), np.where(inside, ix, 0)
        s = self.specimen
        top = (1 - fx) * s[iy, ix] + fx * s[iy, ix + 1]
        bottom = (1 - fx) * s[iy + 1, ix] + fx * s[iy + 1, ix + 1]
        return np.where(inside, (1 - fy) * top + fy * bottom, self.background)

    def _compute_row(self, sy: int) -> np.ndarray:
        value = self.transmission(sy)
        rng = np.random.default_rng([int(self.recipe["noise_seed"]), int(sy)])
        counts = rng.poisson(value * self.scale)
        if counts.max(initial=0) > np.iinfo(self.dtype).max:  # pragma: no cover - recipe
            raise ValueError("the sample's recipe gives more counts than uint16 holds")
        frames = np.zeros(
            (self.scan_shape[1], self.detector_shape[0] * self.detector_shape[1]), self.dtype
        )
        frames[:, self._offsets[1]] = counts
        frames = frames.reshape(self.scan_shape[1], *self.detector_shape)
        frames.setflags(write=False)
        return frames

    def __getitem__(self, index) -> np.ndarray:
        """NumPy indexing, computing only the scan rows it touches (for Dask)."""
        index = index if isinstance(index, tuple) else (index,)
        rows = np.arange(self.shape[0])[index[0]] if index else np.arange(self.shape[0])
        rest = index[1:]
        if np.ndim(rows) == 0:
            return self.row(int(rows))[rest]
        stacked = np.stack([self.row(int(r)) for r in rows]) if len(rows) else None
        if stacked is None:
            return np.empty((0, *self.shape[1:]), self.dtype)[(slice(None), *rest)]
        return stacked[(slice(None), *rest)]

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def contrast_limits(self) -> tuple[float, float]:
        """Display limits known without reading a frame: 0 to three Poisson standard
        deviations above the mean count of the most transmitting specimen point."""
        brightest = self.scale * float(self.specimen.max())
        return (0.0, float(np.ceil(brightest + 3 * np.sqrt(brightest))))

    def metadata(self) -> dict[str, Any]:
        """Scan step, detector pixel size, camera length, beam energy, dwell time (the
        structure of :mod:`napari_emcal.io.readers`), the ground truth and the nominal
        parameters a microscope would report."""
        truth, recipe = self.truth, self.recipe
        nominal = TwinParams.from_json_dict(
            {"parameters": {**recipe["twin"]["parameters"], **recipe["nominal"]}}
        )
        return {
            "source": "sample: overfocus_grating",
            "format": "simulated",
            "scan_step": [truth.scan_pixel_size] * 2,
            "detector_pixel_size": [truth.detector_pixel_size] * 2,
            "camera_length": truth.camera_length,
            "beam_energy": float(recipe["beam_energy_eV"]),
            "dwell_time": float(recipe["dwell_time_s"]),
            "scan_shape_guessed": False,
            "ground_truth": truth.to_json_dict(),
            "nominal": nominal.to_json_dict(),
        }


@lru_cache(maxsize=1)
def _sample() -> OverfocusSample:
    return OverfocusSample()


def overfocus_grating_lazy():
    """The overfocus sample as a Dask array (one chunk per scan row, each computed in
    NumPy when first read and kept), its metadata and display limits known without
    computing a frame.

    Returns
    -------
    data : dask array of uint16, shape (48, 48, 64, 64)
    metadata : dict
        As :func:`overfocus_grating`.
    contrast_limits : (float, float)
    """
    import dask.array as da

    sample = _sample()
    data = da.from_array(
        sample,
        chunks=(1, *sample.shape[1:]),
        name="overfocus_grating-sample",
        asarray=False,
        fancy=False,
        meta=np.empty((0, 0, 0, 0), sample.dtype),
    )
    return data, sample.metadata(), sample.contrast_limits()


@lru_cache(maxsize=2)
def overfocus_grating() -> tuple[np.ndarray, dict[str, Any]]:
    """Simulated overfocused 4D STEM of a cross grating with particles.

    Returns
    -------
    data : ndarray of uint16, shape (48, 48, 64, 64)
    metadata : dict
        In the structure of :mod:`napari_emcal.io.readers` (scan step, detector pixel
        size, camera length, beam energy, dwell time), plus ``"ground_truth"`` (the true
        :class:`TwinParams` as a JSON document) and ``"nominal"`` (the starting guess a
        microscope would give: overfocus read-out and no rotation).
    """
    sample = _sample()
    data = np.stack([sample.row(sy) for sy in range(sample.shape[0])])
    data.setflags(write=False)
    return data, sample.metadata()
