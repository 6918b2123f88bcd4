"""The camera-length calibration in other tools' terms: py4DSTEM's calibration fields,
HyperSpy/pyxem signal axes, and the overfocus twin's parameters.

Pure computation (writing a ``.hspy`` file goes through :mod:`napari_emcal.io.writers`).
"""

from __future__ import annotations

import math

from ..errors import InvalidParameterError
from .calibrate import DiffractionCalibration

__all__ = ["hyperspy_signal_axes", "py4dstem_calibration", "twin_values", "write_pattern_hspy"]


def py4dstem_calibration(result: DiffractionCalibration, ring: int = 0) -> dict:
    """py4DSTEM's calibration fields.

    ``p_ellipse = (qx0, qy0, a, b, theta)`` as py4DSTEM's ``elliptical_coords`` defines it:
    qx is the first array axis (our y), qy the second (our x); a and b the semi-major and
    semi-minor axes (px) of the ``ring``-th fitted ring; theta the major axis's angle from
    the qx axis towards qy, in radians. py4DSTEM's elliptical correction stretches the
    minor axis to the major one, so ``Q_pixel_size`` (Å⁻¹ per pixel, q = 1/d) is the
    scale *after* that correction: the reciprocal pixel size / sqrt(axis ratio).
    """
    if not result.rings:
        raise InvalidParameterError("the calibration has no fitted ring")
    p_ellipse = result.p_ellipse(result.rings[ring].radius_px)
    return {
        "Q_pixel_size": result.reciprocal_pixel_size * 1e-10 / math.sqrt(result.axis_ratio),
        "Q_pixel_units": "A^-1",
        "qx0": result.centre[0],
        "qy0": result.centre[1],
        "p_ellipse": tuple(float(v) for v in p_ellipse),
    }


def hyperspy_signal_axes(result: DiffractionCalibration, shape, units: str = "1/nm") -> list:
    """HyperSpy signal axes (ky, kx) of a pattern of ``shape`` (ny, nx): zero at the beam
    centre, scale the reciprocal pixel size (``"1/nm"``: q = 1/d, as pyxem's ``k`` axes)
    or the scattering angle per pixel (``"mrad"``), at the geometric-mean radius (the
    ellipticity is not undone)."""
    from ..io.writers import _axis

    if units == "1/nm":
        scale = result.reciprocal_pixel_size * 1e-9
    elif units == "mrad":
        scale = result.angle_per_pixel * 1e3
    else:
        raise InvalidParameterError(f"units must be '1/nm' or 'mrad', not {units!r}")
    ny, nx = (int(s) for s in shape)
    cy, cx = result.centre
    return [
        _axis("ky", ny, scale, -cy * scale, units, False),
        _axis("kx", nx, scale, -cx * scale, units, False),
    ]


def write_pattern_hspy(path, image, result: DiffractionCalibration, units: str = "1/nm"):
    """Write the pattern as a HyperSpy ``.hspy`` file with calibrated axes; the
    calibration's JSON goes into its original metadata."""
    from ..io.writers import write_hspy

    return write_hspy(
        path,
        image,
        hyperspy_signal_axes(result, image.shape, units),
        title=f"diffraction pattern ({result.standard} calibration)",
        signal_type="electron_diffraction",
        notes=result.to_json(),
    )


def twin_values(result: DiffractionCalibration) -> dict:
    """The overfocus twin's ``camera_length`` and ``detector_pixel_size`` (m) and beam
    centre ``cy``, ``cx`` (px), as :class:`napari_emcal.overfocus.TwinParams` takes them;
    and the dataset check's mrad per pixel."""
    return {
        "camera_length": result.camera_length,
        "detector_pixel_size": result.detector_pixel_size,
        "cy": result.centre[0],
        "cx": result.centre[1],
        "mrad_per_pixel": result.angle_per_pixel * 1e3,
    }
