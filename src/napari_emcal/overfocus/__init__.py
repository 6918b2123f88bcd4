"""Overfocus calibration of 4D STEM with a digital twin.

Core (no Qt, no napari): :class:`TwinParams`, :func:`compute`, :func:`simulate`,
:func:`estimate` and :func:`calibrate` (automatic calibration).
:class:`OverfocusPass` is the pass the engine runs (in this process or, through
:class:`napari_emcal.engine.PassUDF`, on any LiberTEM executor).

The names are imported when first used (PEP 562): the sample (:mod:`.sample`) and the
twin open without importing numba, SciPy's FFT and the calibration, which napari would
otherwise import on its GUI thread, freezing the window for seconds on first use.
"""

from __future__ import annotations

import sys
import types
from importlib import import_module
from typing import TYPE_CHECKING

__all__ = [
    "OUTPUTS",
    "CalibrationResult",
    "OverfocusPass",
    "TwinParams",
    "calibrate",
    "compute",
    "estimate",
    "rotation_flip_matrix",
    "simulate",
    "specimen_on_scan_grid",
]

#: Where each public name lives.
_HOME = {
    "OUTPUTS": ".images",
    "OverfocusPass": ".images",
    "compute": ".images",
    "CalibrationResult": ".calibrate",
    "calibrate": ".calibrate",
    "estimate": ".calibrate",
    "TwinParams": ".twin",
    "rotation_flip_matrix": "..geometry",
    "simulate": ".simulate",
    "specimen_on_scan_grid": ".simulate",
}

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from ..geometry import rotation_flip_matrix
    from .calibrate import CalibrationResult, calibrate, estimate
    from .images import OUTPUTS, OverfocusPass, compute
    from .simulate import simulate, specimen_on_scan_grid
    from .twin import TwinParams


def __getattr__(name: str):
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(home, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


class _Package(types.ModuleType):
    """The package, whose ``calibrate`` and ``simulate`` stay the functions: importing a
    submodule of the same name would otherwise make the attribute the submodule."""

    def __setattr__(self, name, value):
        if isinstance(value, types.ModuleType) and name in _HOME:
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
