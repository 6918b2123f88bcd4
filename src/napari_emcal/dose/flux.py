"""Per-image flux and dose of a dose-table row: TEM from the current and the illuminated
area or from camera counts, STEM from the current and the scanned field, or the dose the
acquisition software recorded (see :class:`~napari_emcal.dose.table.DoseTable`)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import InvalidParameterError
from ..tables import missing
from ..units import to_si
from .calibration import CurrentCalibration
from .formulas import flux_from_counts, frame_time, stem_flux, stem_probe_dose, tem_flux


def compute_row(row: dict, calibration: CurrentCalibration) -> dict[str, Any]:
    """One row's current, flux, dose (computed, or recorded in the file), probe dose and
    problems (``PER_IMAGE``); currents not entered are looked up in ``calibration``."""
    problems: list[str] = []
    out = {
        "current_used_pa": np.nan,
        "current_from": "",
        "flux_e_A2_s": np.nan,
        "dose_e_A2": np.nan,
        "dose_from": "",
        "dose_estimate_e_A2": np.nan,
        "probe_dose_e_A2": np.nan,
        "problems": problems,
    }
    mode = row["mode"]
    current_pa = row["current_pa"]
    if not missing(current_pa):
        out["current_from"] = "entered"
    else:
        found = calibration.lookup(
            row["voltage_kv"], row["spot"], row["aperture_um"], row["probe"] or None
        )
        current_pa = found.current_pa
        out["current_from"] = f"calibration: {found.message}" if current_pa else ""
        if current_pa is None:
            current_pa = np.nan
            if mode == "STEM" or not _has_counts(row):
                problems.append(f"current unknown ({found.message})")
    if not missing(current_pa) and current_pa < 0:
        problems.append(f"negative current ({current_pa:g} pA)")
        current_pa = np.nan
    out["current_used_pa"] = current_pa
    current = to_si(current_pa, "pA")
    if mode == "STEM":
        _stem(row, current, out)
    elif mode == "TEM":
        _tem(row, current, out)
    elif missing(row["recorded_dose_e_A2"]):
        problems.append("mode unknown: enter TEM or STEM")
    out["dose_from"] = "" if math.isnan(out["dose_e_A2"]) else "computed"
    _use_recorded_dose(row, out)
    return out


def _stem(row: dict, current: float, out: dict) -> None:
    problems = out["problems"]
    pixel, shape = row["pixel_size_nm"], (row["shape_y"], row["shape_x"])
    if missing(pixel):
        problems.append("pixel size (scan step) unknown")
        return
    if missing(shape[0]) or missing(shape[1]):
        problems.append("scan shape unknown")
        return
    step = to_si(pixel, "nm")
    fov = (shape[0] * step, shape[1] * step)
    dwell = to_si(row["dwell_us"], "us") if not missing(row["dwell_us"]) else None
    flyback = to_si(row["flyback_us"], "us") if not missing(row["flyback_us"]) else 0.0
    try:
        flux = stem_flux(current, fov) if not math.isnan(current) else np.nan
        if not missing(row["frame_time_s"]):
            seconds = float(row["frame_time_s"])
            if seconds <= 0:
                raise InvalidParameterError(f"frame time must be positive; got {seconds:g} s")
            dwell = dwell if dwell is not None else seconds / (shape[0] * shape[1])
        elif dwell is not None:
            seconds = frame_time(shape, dwell, flyback)
        else:
            problems.append("dwell time or frame time missing")
            out["flux_e_A2_s"] = flux
            return
        out["flux_e_A2_s"] = flux
        out["dose_e_A2"] = flux * seconds
        if not math.isnan(current):
            out["probe_dose_e_A2"] = stem_probe_dose(current, step, dwell)
    except InvalidParameterError as exc:
        problems.append(str(exc))
        out["flux_e_A2_s"] = out["dose_e_A2"] = out["probe_dose_e_A2"] = np.nan


def _tem(row: dict, current: float, out: dict) -> None:
    problems = out["problems"]
    diameter = row["illuminated_diameter_um"]
    zero_area = not missing(diameter) and diameter <= 0
    if zero_area:
        problems.append(
            f"illuminated area is zero: the beam diameter must be positive (got {diameter:g} µm)"
        )
        diameter = np.nan
    try:
        if not math.isnan(current) and not missing(diameter):
            flux = tem_flux(current, illuminated_diameter=to_si(diameter, "um"))
        elif _has_counts(row):
            if missing(row["pixel_size_nm"]):
                problems.append("pixel size unknown: needed for the flux from counts")
                return
            flux = flux_from_counts(
                row["counts_per_pixel_per_s"],
                row["counts_per_electron"],
                to_si(row["pixel_size_nm"], "nm"),
            )
            out["current_from"] = out["current_from"] or "camera counts"
        else:
            if missing(diameter) and not zero_area:
                problems.append(
                    "illuminated area unknown: enter the beam diameter, or "
                    "camera counts per second with counts per electron"
                )
            return
    except InvalidParameterError as exc:
        problems.append(str(exc).replace("(m)", "").replace("  ", " "))
        return
    out["flux_e_A2_s"] = flux
    exposure = row["exposure_s"]
    if missing(exposure):
        problems.append("exposure time missing")
    elif exposure <= 0:
        problems.append(f"exposure time must be positive; got {exposure:g} s")
    else:
        out["dose_e_A2"] = flux * exposure


#: Problems that only keep the dose from being *computed* (not a recorded one from counting).
_ESTIMATE_ONLY = (
    "current unknown",
    "illuminated area unknown",
    "pixel size",
    "scan shape",
    "dwell time",
    "mode unknown",
)


def _use_recorded_dose(row: dict, out: dict) -> None:
    """A dose the acquisition software recorded (SerialEM's ExposureDose) is the image's
    dose; the one computed from current or counts stays beside it as a check."""
    recorded = row["recorded_dose_e_A2"]
    if missing(recorded):
        return
    out["dose_estimate_e_A2"] = out["dose_e_A2"]
    out["dose_e_A2"], out["dose_from"] = float(recorded), "recorded in the file"
    exposure = row["exposure_s"]
    if math.isnan(out["flux_e_A2_s"]) and not missing(exposure) and exposure > 0:
        out["flux_e_A2_s"] = float(recorded) / float(exposure)
    # what kept the estimate from being computed does not stop the recorded dose
    out["problems"][:] = [p for p in out["problems"] if not p.startswith(_ESTIMATE_ONLY)]


def _has_counts(row: dict) -> bool:
    return not missing(row["counts_per_pixel_per_s"]) and not missing(row["counts_per_electron"])
