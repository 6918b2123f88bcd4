"""Simulated overfocused 4D STEM data through the twin (for tests, demos and benchmarks)."""

from __future__ import annotations

import numpy as np

from ..errors import InvalidDataError, InvalidParameterError
from .kernels import sample_specimen
from .twin import TwinParams

__all__ = ["simulate", "scan_origin_in_specimen", "specimen_on_scan_grid"]


def scan_origin_in_specimen(specimen_shape, scan_shape) -> tuple[int, int]:
    """Specimen pixel of scan position (0, 0): the scan is centred on the specimen."""
    return ((specimen_shape[0] - scan_shape[0]) // 2, (specimen_shape[1] - scan_shape[1]) // 2)


def specimen_on_scan_grid(specimen: np.ndarray, scan_shape) -> np.ndarray:
    """The part of ``specimen`` under the scan grid (what an ideal ``point`` image shows)."""
    oy, ox = scan_origin_in_specimen(specimen.shape, scan_shape)
    return specimen[oy : oy + scan_shape[0], ox : ox + scan_shape[1]]


def simulate(
    specimen, scan_shape, detector_shape, params: TwinParams, *, dose=None, seed=None
) -> np.ndarray:
    """Simulate an overfocused 4D STEM dataset of a 2D specimen through the twin.

    Frame ``data[sy, sx]`` pixel ``d`` shows the specimen at ``t = s + M (d − c)``
    (scan-pixel units, bilinear interpolation), the same mapping
    :func:`~napari_emcal.overfocus.compute` inverts.

    Parameters
    ----------
    specimen : array_like, shape (h, w)
        Specimen transmission image sampled with the scan step (one specimen pixel per
        scan pixel). The scan is centred on it: scan position (0, 0) is specimen pixel
        ``((h − scan_y) // 2, (w − scan_x) // 2)``. Points outside it see the specimen's
        mean value.
    scan_shape : (int, int)
    detector_shape : (int, int)
    params : TwinParams
        With ``semiconv`` set, pixels outside the bright-field disk are 0.
    dose : float, optional
        Mean number of electrons per frame. When given, the frames are scaled to it and
        Poisson noise is drawn; the result is an unsigned integer count array.
    seed : int, optional
        Seed of the noise generator.

    Returns
    -------
    ndarray, shape scan_shape + detector_shape
        float32 without ``dose``, uint16 (or uint32 when counts exceed 65535) with it.
    """
    specimen = np.asarray(specimen, dtype=np.float64)
    if specimen.ndim != 2 or specimen.size == 0:
        raise InvalidDataError(
            f"specimen must be a non-empty 2D image, got shape {specimen.shape}."
        )
    if not np.all(np.isfinite(specimen)):
        raise InvalidDataError("specimen contains NaN or infinite values.")
    scan_shape = _shape2("scan_shape", scan_shape)
    detector_shape = _shape2("detector_shape", detector_shape)
    if not isinstance(params, TwinParams):
        raise InvalidParameterError(f"params must be a TwinParams, got {type(params).__name__}.")
    if dose is not None and not (np.isfinite(dose) and dose > 0):
        raise InvalidParameterError(
            f"dose must be a positive number of electrons per frame, got {dose}."
        )

    mask = params.bright_field_mask(detector_shape)
    if mask is None:
        mask = np.ones(detector_shape, dtype=bool)
    out = np.empty(scan_shape + detector_shape, dtype=np.float32)
    origin = scan_origin_in_specimen(specimen.shape, scan_shape)
    sample_specimen(specimen, origin, params, mask, specimen.mean(), out)
    if dose is None:
        return out
    mean_frame_sum = float(out.sum(axis=(2, 3), dtype=np.float64).mean())
    if mean_frame_sum <= 0:
        raise InvalidDataError("The specimen transmits nothing: cannot scale to a dose.")
    rng = np.random.default_rng(seed)
    counts = rng.poisson(out * (dose / mean_frame_sum))
    dtype = np.uint16 if counts.max(initial=0) <= np.iinfo(np.uint16).max else np.uint32
    return counts.astype(dtype)


def _shape2(name, shape) -> tuple[int, int]:
    try:
        shape = tuple(int(v) for v in shape)
    except TypeError:
        raise InvalidParameterError(f"{name} must be a pair of ints, got {shape!r}.") from None
    if len(shape) != 2 or min(shape) <= 0:
        raise InvalidParameterError(f"{name} must be two positive ints, got {shape}.")
    return shape
