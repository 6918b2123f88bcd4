"""Keeping an accepted calibration in the history, from any widget: the previous value at
the same setting beside the new one, and a napari warning when it drifted."""

from __future__ import annotations

from napari.utils.notifications import show_warning

from ..errors import EmcalError
from ..history import TOLERANCES, History

__all__ = ["keep_in_history"]


def keep_in_history(tool: str, values: dict, uncertainty: dict, **where) -> str:
    """Record the calibration; a sentence for the widget's status (previous value and
    drift), or why it could not be recorded. Never raises: the calibration itself stands."""
    try:
        previous, warnings = History().keep(tool, values, uncertainty, **where)
    except EmcalError as exc:
        return f"not kept in the history: {exc}"
    for warning in warnings:
        show_warning(f"Calibration drift: {warning}")
    if previous is None:
        return "kept in the history (the first at this setting)"
    shown = ", ".join(
        f"{name} {value:.6g}" if isinstance(value, float) else f"{name} {value}"
        for name, value in previous.values.items()
        if name in TOLERANCES[tool]
    )
    drift = f"; DRIFT: {'; '.join(warnings)}" if warnings else ""
    return f"kept in the history; previous ({previous.time[:16]}): {shown}{drift}"
