"""Generic writers: HyperSpy/pyxem signals through RosettaSciIO with calibrated axes, and
SerialEM text lines.

- :func:`stem_axes`, :func:`write_hspy`: a 4D STEM dataset (or a 2D image) as a
  HyperSpy/pyxem signal written by RosettaSciIO, with its axes calibrated: navigation
  ``y``, ``x`` (the scan, nm, in array order as HyperSpy keeps them) and signal ``ky``,
  ``kx`` (the detector, mrad from the camera length and pixel size, offset so that the
  beam centre is 0; pixels when a length is unknown).
- :func:`write_serialem_lines`: lines for SerialEM's calibration files, with a sentence
  saying what was written and left out.
- :func:`serialem_rows_along_camera_y`: whether the rows of an image file SerialEM wrote
  run along its camera y (MRC) or against it (TIFF), from the file's name.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .._files import atomic_write_text
from ..errors import InvalidDataError
from ..units import from_si

__all__ = [
    "SERIALEM_MRC_SUFFIXES",
    "SERIALEM_TIFF_SUFFIXES",
    "image_axes",
    "serialem_rows_along_camera_y",
    "stem_axes",
    "write_hspy",
    "write_serialem_lines",
]

#: Files SerialEM writes as MRC (single images, stacks, maps): rows flipped on writing.
SERIALEM_MRC_SUFFIXES = (".mrc", ".st", ".map", ".mrcs")
#: Files SerialEM writes as TIFF: rows in the order it holds them in memory.
SERIALEM_TIFF_SUFFIXES = (".tif", ".tiff")


def serialem_rows_along_camera_y(name) -> bool | None:
    """Whether the stored rows of an image SerialEM wrote run along its camera y.

    SerialEM holds an image in memory with row 0 at the top of its display and its camera
    coordinates right-handed, y up the display: camera y runs against the memory rows. It
    reverses the rows when it writes an MRC file (3dmod then shows row 0 at the bottom,
    the same picture) and keeps them when it writes a TIFF. Hence, for the array as
    mrcfile/tifffile read it, camera y = +row in an MRC file and -row in a TIFF
    (docs/science.md, "SerialEM's camera axes", quotes the source).

    Parameters
    ----------
    name : str or path
        The image file's name or path (only its suffix is used).

    Returns
    -------
    bool or None
        True for MRC (``.mrc``, ``.st``, ``.map``, ``.mrcs``), False for TIFF, None when
        the name is not of a file SerialEM writes in a known row order.
    """
    suffix = Path(str(name or "")).suffix.lower()
    if suffix in SERIALEM_MRC_SUFFIXES:
        return True
    if suffix in SERIALEM_TIFF_SUFFIXES:
        return False
    return None


def write_serialem_lines(lines: list[str], skipped: list[str], path, what: str) -> str:
    """Write SerialEM lines to ``path``; a sentence saying what was written and left out."""
    atomic_write_text(path, "\n".join(lines) + "\n")
    message = f"{len(lines)} {what} line(s) written to {Path(path).name}"
    if skipped:
        message += f"; left out: {'; '.join(skipped)}"
    return message


def _axis(name: str, size: int, scale: float, offset: float, units: str, navigate: bool):
    return {
        "name": name,
        "size": int(size),
        "scale": float(scale),
        "offset": float(offset),
        "units": units,
        "navigate": bool(navigate),
        "_type": "UniformDataAxis",
    }


def stem_axes(
    shape,
    *,
    scan_step: float | None = None,
    camera_length: float | None = None,
    detector_pixel_size: float | None = None,
    centre: tuple[float, float] | None = None,
) -> list[dict]:
    """HyperSpy axes of a 4D STEM array of ``shape`` (scan_y, scan_x, det_y, det_x).

    Parameters
    ----------
    scan_step : float, optional
        Distance between scan positions (m); the navigation axes are in nm (in pixels
        without it).
    camera_length, detector_pixel_size : float, optional
        Specimen to detector (m) and one detector pixel (m): the signal axes are in mrad
        (pixels without either).
    centre : (float, float), optional
        Beam centre (cy, cx) in detector pixels, at angle 0 (default: pixel 0 at 0).
    """
    sy, sx, dy, dx = (int(v) for v in shape)
    nav_scale, nav_units = (from_si(scan_step, "nm"), "nm") if scan_step else (1.0, "px")
    if camera_length and detector_pixel_size:
        sig_scale, sig_units = from_si(detector_pixel_size / camera_length, "mrad"), "mrad"
    else:
        sig_scale, sig_units = 1.0, "px"
    cy, cx = centre if centre is not None else (0.0, 0.0)
    return [
        _axis("y", sy, nav_scale, 0.0, nav_units, True),
        _axis("x", sx, nav_scale, 0.0, nav_units, True),
        _axis("ky", dy, sig_scale, -cy * sig_scale, sig_units, False),
        _axis("kx", dx, sig_scale, -cx * sig_scale, sig_units, False),
    ]


def image_axes(shape, scale=(1.0, 1.0), units=("px", "px")) -> list[dict]:
    """HyperSpy axes of a 2D image (y, x), both signal axes."""
    return [
        _axis(name, size, step, 0.0, unit, False)
        for name, size, step, unit in zip(("y", "x"), shape, scale, units)
    ]


def write_hspy(
    path, data, axes: list[dict], *, title: str = "", signal_type: str = "", notes=None
) -> Path:
    """Write ``data`` (NumPy or Dask; Dask is written block by block) with ``axes`` as a
    HyperSpy ``.hspy`` file through RosettaSciIO; ``notes`` (a JSON-able dict) go into its
    original metadata under ``napari_emcal``."""
    import dask.array as da
    from rsciio.hspy import file_writer

    if len(axes) != np.ndim(data):
        raise InvalidDataError(f"{len(axes)} axes for data of {np.ndim(data)} dimensions")
    lazy = isinstance(data, da.Array)
    signal = {
        "data": data if lazy else np.asarray(data),
        "axes": axes,
        "metadata": {
            "General": {"title": title},
            "Signal": {"signal_type": signal_type},
        },
        "original_metadata": {"napari_emcal": notes or {}},
        "learning_results": {},
        "models": {},
        "attributes": {"_lazy": lazy},
        "tmp_parameters": {},
        "package_info": {"name": "napari-emcal", "version": _version()},
    }
    from .._files import atomic_write

    return atomic_write(
        path, lambda temporary: file_writer(str(temporary), signal, show_progressbar=False)
    )


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("napari-emcal")
    except PackageNotFoundError:
        return ""
