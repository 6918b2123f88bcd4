"""Simulated overfocused 4D STEM data through the twin (for tests, demos and benchmarks)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..errors import InvalidDataError, InvalidParameterError
from .kernels import sample_specimen
from .twin import TwinParams

__all__ = ["simulate", "scan_origin_in_specimen", "specimen_on_scan_grid"]


def scan_origin_in_specimen(specimen_shape, scan_shape, oversample: int = 1) -> tuple[int, int]:
    """Specimen pixel of scan position (0, 0): the scan is centred on the specimen.

    ``oversample`` is the number of specimen pixels per scan step.
    """
    return (
        (specimen_shape[0] - oversample * (scan_shape[0] - 1) - 1) // 2,
        (specimen_shape[1] - oversample * (scan_shape[1] - 1) - 1) // 2,
    )


def specimen_on_scan_grid(specimen: np.ndarray, scan_shape, oversample: int = 1) -> np.ndarray:
    """The part of ``specimen`` under the scan grid (what an ideal ``point`` image shows)."""
    oy, ox = scan_origin_in_specimen(specimen.shape, scan_shape, oversample)
    return specimen[
        oy : oy + oversample * scan_shape[0] : oversample,
        ox : ox + oversample * scan_shape[1] : oversample,
    ]


def footprint_kernel(params: TwinParams, oversample: int = 1, supersample: int = 8):
    """Normalised indicator of one detector pixel's footprint on the specimen.

    The footprint of detector pixel ``d`` is the parallelogram ``M (d − c + u)``,
    ``u ∈ [−½, ½]²``, in scan pixels; here it is rasterised in specimen pixels
    (``oversample`` per scan step), each kernel pixel weighted by the fraction of
    ``supersample²`` sub-points inside. The kernel has odd sides and is centrally
    symmetric, so convolving with it does not move the specimen.
    """
    matrix = params.matrix * oversample
    half = 0.5 * np.abs(matrix).sum(axis=1)  # half extent of the parallelogram per axis
    radius = np.ceil(half + 0.5).astype(int)
    inverse = np.linalg.inv(matrix)
    offsets = (np.arange(supersample) + 0.5) / supersample - 0.5
    ky = np.arange(-radius[0], radius[0] + 1)[:, None] + offsets[None, :]
    kx = np.arange(-radius[1], radius[1] + 1)[:, None] + offsets[None, :]
    py = ky.reshape(-1)[:, None, None]
    px = kx.reshape(-1)[None, :, None]
    # u = M⁻¹ p for every sub-point; inside when both |u| <= 1/2
    uy = inverse[0, 0] * py + inverse[0, 1] * px
    ux = inverse[1, 0] * py + inverse[1, 1] * px
    inside = (np.abs(uy) <= 0.5) & (np.abs(ux) <= 0.5)
    n_y, n_x = ky.shape[0], kx.shape[0]
    kernel = inside[..., 0].reshape(n_y, supersample, n_x, supersample).mean(axis=(1, 3))
    if kernel.sum() == 0:  # a footprint smaller than one sub-point: a point sample
        kernel[radius[0], radius[1]] = 1.0
    return kernel / kernel.sum()


def simulate(
    specimen,
    scan_shape,
    detector_shape,
    params: TwinParams,
    *,
    dose=None,
    seed=None,
    oversample: int = 1,
    integrate: bool = False,
) -> np.ndarray:
    """Simulate an overfocused 4D STEM dataset of a 2D specimen through the twin.

    Frame ``data[sy, sx]`` pixel ``d`` shows the specimen at ``t = s + M (d − c(s))``
    (scan-pixel units, bilinear interpolation), the same mapping
    :func:`~napari_emcal.overfocus.compute` inverts. With a descan in ``params`` the beam
    centre ``c(s)`` and the bright-field disk move from frame to frame
    (:meth:`TwinParams.centre_at`).

    Parameters
    ----------
    specimen : array_like, shape (h, w)
        Specimen transmission image with ``oversample`` pixels per scan step. The scan is
        centred on it (:func:`scan_origin_in_specimen`). Points outside it see the
        specimen's mean value.
    scan_shape : (int, int)
    detector_shape : (int, int)
    params : TwinParams
        With ``semiconv`` set, pixels outside the bright-field disk (around ``c(s)``)
        are 0.
    dose : float, optional
        Mean number of electrons per frame. When given, the frames are scaled to it and
        Poisson noise is drawn; the result is an unsigned integer count array.
    seed : int, optional
        Seed of the noise generator.
    oversample : int
        Specimen pixels per scan step (default 1). More than 1 gives the specimen detail
        finer than the scan step, as a real specimen has.
    integrate : bool
        When true, each detector pixel records the mean of the specimen over its
        footprint ``M (d − c + u)``, ``u ∈ [−½, ½]²`` (a real pixel integrates its area;
        at shadow magnifications ``|k| > 1`` the footprint spans several scan steps).
        Computed exactly for the linear map by convolving the specimen with the
        footprint (:func:`footprint_kernel`) and sampling at the pixel centre. Default:
        the specimen at the pixel centre.

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
    if isinstance(oversample, bool) or not isinstance(oversample, (int, np.integer)):
        raise InvalidParameterError(f"oversample must be a positive int, got {oversample!r}.")
    if oversample < 1:
        raise InvalidParameterError(f"oversample must be a positive int, got {oversample}.")
    scan_shape = _shape2("scan_shape", scan_shape)
    detector_shape = _shape2("detector_shape", detector_shape)
    if not isinstance(params, TwinParams):
        raise InvalidParameterError(f"params must be a TwinParams, got {type(params).__name__}.")
    if dose is not None and not (np.isfinite(dose) and dose > 0):
        raise InvalidParameterError(
            f"dose must be a positive number of electrons per frame, got {dose}."
        )

    out = np.empty(scan_shape + detector_shape, dtype=np.float32)
    origin = scan_origin_in_specimen(specimen.shape, scan_shape, oversample)
    background = specimen.mean()
    if integrate:
        kernel = footprint_kernel(params, oversample)
        if max(kernel.shape) > min(specimen.shape):
            raise InvalidParameterError(
                f"A detector pixel's footprint ({kernel.shape[0]} x {kernel.shape[1]} specimen "
                f"px) is larger than the specimen {specimen.shape}."
            )
        specimen = ndimage.convolve(specimen, kernel, mode="reflect")
    sample_specimen(specimen, origin, params, background, out, oversample=oversample)
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
