"""Input checks the tools share, so that bad input gets the same clear message everywhere."""

from __future__ import annotations

import numpy as np

from .errors import InvalidDataError


def image_2d(image, *, name: str = "the image", min_size: int = 32) -> np.ndarray:
    """A real, finite 2D array (singleton axes dropped), or InvalidDataError saying why."""
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[-1] in (3, 4):
        raise InvalidDataError(f"{name} is RGB; pick a greyscale image of the specimen")
    array = np.squeeze(array)
    if array.ndim != 2:
        raise InvalidDataError(f"{name} must be 2D (y, x); got an array of shape {np.shape(image)}")
    if min(array.shape) < min_size:
        raise InvalidDataError(
            f"{name} ({array.shape[0]} x {array.shape[1]}) is too small; "
            f"at least {min_size} x {min_size} pixels are needed"
        )
    if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise InvalidDataError(f"{name} must be real numbers; got dtype {array.dtype}")
    if not np.all(np.isfinite(array)):
        raise InvalidDataError(f"{name} holds NaN or infinite values; replace them first")
    return array


#: Plausible ranges of physical values, by the name (with its unit) tables and the API use:
#: ``name: (smallest, largest, unit)``; magnitudes for signed values (a defocus, an
#: overfocus). A value outside is refused as a wrong unit or a typing error: a confident
#: answer from it would be wrong.
PLAUSIBLE: dict[str, tuple[float, float, str]] = {
    "pixel_size_nm": (1e-5, 1e7, "nm"),  # 10 fm (a sub-Å image pixel) to 10 mm
    "spacing_nm": (0.01, 1e7, "nm"),  # lattice planes to a 2.5-mesh grid
    "magnification": (1.0, 1e9, ""),
    "overfocus": (1e-12, 1.0, "m"),  # 1 pm: in focus, for simulations
    "scan_pixel_size": (1e-13, 1e-3, "m"),
    "camera_length": (1e-3, 100.0, "m"),
    "detector_pixel_size": (1e-7, 1e-2, "m"),
    "illuminated_diameter_um": (1e-4, 1e5, "µm"),  # 0.1 nm probe to a 10 cm flood beam
    "current_pa": (1e-6, 1e8, "pA"),
    "voltage_kv": (1.0, 3000.0, "kV"),
    "defocus_um": (1e-3, 1e6, "µm"),
}
#: Rotations beyond this many degrees are no angle anyone measured (float precision is
#: gone long before 1e308°): refused rather than wrapped.
MAX_ROTATION_DEG = 3600.0


def plausible(name: str, value, *, label: str | None = None) -> float:
    """``value`` as a float when finite and within :data:`PLAUSIBLE` ``[name]`` (its
    magnitude), else :class:`~napari_emcal.errors.InvalidParameterError` naming the range."""
    from .errors import InvalidParameterError

    label = label or name
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidParameterError(f"{label} must be a number; got {value!r}") from None
    if not np.isfinite(number):
        raise InvalidParameterError(f"{label} must be finite; got {value!r}")
    low, high, unit = PLAUSIBLE[name]
    if not low <= abs(number) <= high:
        raise InvalidParameterError(out_of_range(label, number, name))
    return number


def out_of_range(label: str, value: float, name: str) -> str:
    low, high, unit = PLAUSIBLE[name]
    unit = f" {unit}" if unit else ""
    return (
        f"{label} = {value:g}{unit} is outside the plausible range {low:g} to {high:g}{unit}"
        + (" (in magnitude)" if value < 0 else "")
        + ": is the unit right?"
    )


def rotation_deg(value, *, label: str = "rotation") -> float:
    """An angle in degrees, finite and within :data:`MAX_ROTATION_DEG`, wrapped into
    (-180°, 180°]; else :class:`~napari_emcal.errors.InvalidParameterError`."""
    from .errors import InvalidParameterError

    if isinstance(value, (bool, np.bool_)):
        raise InvalidParameterError(f"{label} must be a number of degrees; got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidParameterError(f"{label} must be a number of degrees; got {value!r}") from None
    if not np.isfinite(number):
        raise InvalidParameterError(f"{label} must be finite; got {value!r}")
    if abs(number) > MAX_ROTATION_DEG:
        raise InvalidParameterError(
            f"{label} = {number:g}° is more than ten turns: not an angle in degrees"
        )
    wrapped = -((-number + 180.0) % 360.0 - 180.0)
    return 180.0 if wrapped == -180.0 else wrapped
