"""One calibration of a recorded series as the SerialEM dock asks for it (Qt-free: it runs
in the dock's worker): the fit, SerialEM's lines, the history's values and a summary."""

from __future__ import annotations

import numpy as np

from ..errors import InvalidParameterError

__all__ = ["compute", "summary"]


def compute(series, kind: str, prior=None, defocused=None):
    """(kind, result, SerialEM lines, (history values, uncertainties, setting)) of a
    calibration of ``series`` (pure: runs in the worker); ``defocused``: the second series
    of a high-defocus image-shift calibration (else ``series`` holds both defoci)."""
    from . import lines as se
    from .intensity import beam_intensity, dead_time
    from .shifts import fit_shift_matrix, high_defocus_image_shift

    records = series.records
    first = records[0]
    setting = ", ".join(f"{k}={v}" for k, v in first.setting().items() if v is not None)
    if kind in ("image_shift", "stage_shift"):
        groups = [g for g in series.groups().values() if len(g) >= 2]
        if not groups:
            from ..errors import InvalidDataError

            raise InvalidDataError("no two records at one mag index, camera and binning")
        group = max(groups, key=len)
        fit = fit_shift_matrix(
            group, "image_shift" if kind == "image_shift" else "stage", prior=prior
        )
        lines = _lines(
            fit,
            lambda: (
                se.image_shift_lines([(fit, group[0])], series.row_is_camera_y)
                if kind == "image_shift"
                else se.stage_lines(fit, group[0], series.row_is_camera_y)
            ),
        )
        names = (("dcol_dx", 0, 0), ("dcol_dy", 0, 1), ("drow_dx", 1, 0), ("drow_dy", 1, 1))
        values = {n: float(fit.matrix[i, j]) for n, i, j in names}
        sigma = {n: float(fit.sigma[i, j]) for n, i, j in names}
        return kind, fit, lines, (values, sigma, setting)
    if kind == "high_defocus_is":
        from .shifts import image_shift_matrix

        if defocused is not None:
            parts = [series.records, defocused.records]
        else:
            by_defocus = series.with_defocus()
            if len(by_defocus) != 2 or None in by_defocus:
                from ..errors import InvalidDataError

                raise InvalidDataError(
                    f"the series holds {len(by_defocus)} defocus value(s): a high-defocus "
                    "image-shift calibration needs records at focus and at one defocus (or "
                    "choose a defocused series)"
                )
            parts = [by_defocus[k] for k in sorted(by_defocus, key=abs)]
        fits = [image_shift_matrix(p, prior=prior) for p in parts]
        result = high_defocus_image_shift(
            *fits,
            focus_defocus_um=parts[0][0].defocus_um,
            defocus_um=parts[1][0].defocus_um,
            record=parts[1][0],
        )
        lines = _lines(
            result, lambda: [se.high_focus_is_line(result, parts[1][0], series.row_is_camera_y)]
        )
        values = {"scale": result.scale, "rotation_deg": result.rotation_deg}
        sigma = {"scale": result.scale_sigma, "rotation_deg": result.rotation_sigma_deg}
        return kind, result, lines, (values, sigma, f"defocus_um={result.defocus_um:g}, {setting}")
    if kind == "beam_intensity":
        result = beam_intensity(records)
        c, s = result.coefficients, result.sigma
        values = {f"c{i}": float(c[i]) for i in range(3)}
        sigma = {f"c{i}": float(s[i]) for i in range(3)}
        lines = _lines(result, lambda: se.beam_intensity_lines(result, first))
        return kind, result, lines, (values, sigma, setting)
    if kind == "dead_time":
        result = dead_time(records)
        return (
            kind,
            result,
            [se.dead_time_line(result)],
            (
                {"dead_time_s": result.dead_time_s},
                {"dead_time_s": result.dead_time_sigma_s},
                f"camera={first.camera}",
            ),
        )
    raise InvalidParameterError(f"unknown calibration {kind!r}")


def _lines(result, make) -> list[str]:
    """SerialEM's lines, or none with the reason added to the result's notes."""
    from ..errors import InvalidDataError

    try:
        return make()
    except InvalidDataError as exc:
        result.notes.append(f"no SerialEM lines: {exc}")
        return []


def summary(kind: str, result) -> str:
    """The result in a few words, with its uncertainty and what to look at."""
    if kind in ("image_shift", "stage_shift"):
        m, s = result.matrix, result.sigma
        unit = "px per IS unit" if kind == "image_shift" else "px per µm"
        text = (
            f"[[{m[0, 0]:.3f}±{s[0, 0]:.3f}, {m[0, 1]:.3f}±{s[0, 1]:.3f}], "
            f"[{m[1, 0]:.3f}±{s[1, 0]:.3f}, {m[1, 1]:.3f}±{s[1, 1]:.3f}]] unbinned {unit} "
            f"(col, row of the stored array); residual rms "
            f"{np.sqrt(np.mean(result.residuals**2)):.3f} px; drift up to "
            f"{result.drift_rate:.3g} px/{result.drift_axis}"
        )
    elif kind == "high_defocus_is":
        text = (
            f"defocus {result.defocus_um:g} µm: scale {result.scale:.5f}±{result.scale_sigma:.5f}, "
            f"rotation {result.rotation_deg:+.3f}±{result.rotation_sigma_deg:.3f}°"
        )
    elif kind == "beam_intensity":
        text = (
            f"{len(result.currents)} intensities, currents {result.currents.min():.4g}–"
            f"{result.currents.max():.4g} counts/px/s; quadratic fit rms {result.residual_rms:.2g}"
        )
    else:
        text = (
            f"dead time {result.dead_time_s * 1e3:.3f}±{result.dead_time_sigma_s * 1e3:.3f} ms "
            f"({result.rate:.4g} counts/s)"
        )
    notes = getattr(result, "notes", [])
    return text + ("".join(f"\nnote: {n}" for n in notes) if notes else "")
