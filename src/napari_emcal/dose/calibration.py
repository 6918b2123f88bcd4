"""Beam-current calibration: the current measured per voltage, spot size, aperture and probe.

Pure computation (pandas). A row is one measurement with a Faraday cup, the screen or camera
counts; :meth:`CurrentCalibration.lookup` finds the current for an image's conditions, and
says "unknown" where the table cannot support an answer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .._tables import missing, read_table, text_or_empty, to_number
from ..errors import InvalidDataError, InvalidParameterError

__all__ = ["CALIBRATION_COLUMNS", "CurrentCalibration", "CurrentLookup"]

CALIBRATION_COLUMNS = (
    "voltage_kv",
    "spot",
    "aperture_um",
    "probe",
    "current_pa",
    "method",
    "date",
    "note",
)
_TEXT = ("probe", "method", "date", "note")
_DTYPES = {c: object if c in _TEXT else "float64" for c in CALIBRATION_COLUMNS}
#: Voltages closer than this (relative) are the same high-tension setting.
VOLTAGE_TOLERANCE = 0.005
#: Condenser apertures closer than this (µm) are the same aperture.
APERTURE_TOLERANCE_UM = 1.0


@dataclass(frozen=True)
class CurrentLookup:
    """The result of a current lookup.

    Attributes
    ----------
    current_pa : float or None
        The current in pA, None when the table does not support one.
    message : str
        How it was found ("calibrated", "interpolated between spots 3 and 5") or why not.
    """

    current_pa: float | None
    message: str


class CurrentCalibration:
    """Measured beam currents keyed by voltage (kV), spot size, condenser aperture (µm) and
    probe mode; currents in pA.

    Between two calibrated spot sizes of the same voltage, aperture and probe the current is
    interpolated linearly in log(current) (each spot step changes the current by a roughly
    constant factor); outside the calibrated spots, or for another voltage, aperture or probe,
    it is unknown. An empty ``probe`` or aperture in a row matches any.
    """

    def __init__(self):
        self._rows = pd.DataFrame({c: pd.Series(dtype=_DTYPES[c]) for c in CALIBRATION_COLUMNS})

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def frame(self) -> pd.DataFrame:
        return self._rows.copy()

    def add(
        self,
        voltage_kv: float,
        spot: float,
        current_pa: float,
        *,
        aperture_um: float | None = None,
        probe: str = "",
        method: str = "",
        date: str = "",
        note: str = "",
    ) -> int:
        """Add a measurement; returns its row index (rows sorted by voltage, aperture, spot).

        Raises
        ------
        InvalidParameterError
            Voltage, spot or current not positive (a zero current is no calibration).
        """
        row = _calibration_row(
            voltage_kv=voltage_kv,
            spot=spot,
            current_pa=current_pa,
            aperture_um=aperture_um,
            probe=probe,
            method=method,
            date=date,
            note=note,
        )
        self._rows.loc[len(self._rows)] = row
        return self._sort(len(self._rows) - 1)

    def update(self, index: int, **values) -> int:
        """Correct entries of a row; returns its new index. Invalid values change nothing."""
        unknown = [c for c in values if c not in CALIBRATION_COLUMNS]
        if unknown:
            raise InvalidParameterError(f"unknown column(s) {', '.join(unknown)}")
        if not 0 <= index < len(self._rows):
            raise InvalidParameterError(f"no calibration row {index}")
        self._rows.loc[index] = _calibration_row(**{**self._rows.loc[index].to_dict(), **values})
        return self._sort(index)

    def remove(self, index: int) -> None:
        self._rows = self._rows.drop(index).reset_index(drop=True)

    def _sort(self, new: int) -> int:
        order = self._rows.assign(_order=np.arange(len(self._rows))).sort_values(
            ["voltage_kv", "aperture_um", "probe", "spot", "_order"], kind="stable"
        )["_order"]
        order = order.to_numpy()
        self._rows = self._rows.iloc[order].reset_index(drop=True).astype(_DTYPES)
        return int(np.flatnonzero(order == new)[0])

    def lookup(self, voltage_kv, spot, aperture_um=None, probe=None) -> CurrentLookup:
        """The current for these conditions, or None with the reason."""
        if len(self._rows) == 0:
            return CurrentLookup(None, "no current calibration")
        if missing(voltage_kv) or missing(spot):
            need = " and ".join(
                n for n, v in (("voltage", voltage_kv), ("spot size", spot)) if missing(v)
            )
            return CurrentLookup(None, f"{need} unknown: the current cannot be looked up")
        voltage_kv, spot = float(voltage_kv), float(spot)
        rows = self._rows
        rows = rows[np.abs(rows["voltage_kv"] / voltage_kv - 1) <= VOLTAGE_TOLERANCE]
        if rows.empty:
            return CurrentLookup(None, f"no current calibrated at {voltage_kv:g} kV")
        if not missing(probe) and str(probe).strip():
            rows = rows[(rows["probe"] == str(probe).strip()) | (rows["probe"] == "")]
            if rows.empty:
                return CurrentLookup(
                    None, f"no current calibrated for probe {probe!r} at {voltage_kv:g} kV"
                )
        elif len(set(rows["probe"]) - {""}) > 1:
            return CurrentLookup(None, "probe mode unknown and several are calibrated")
        if not missing(aperture_um):
            rows = rows[
                rows["aperture_um"].isna()
                | (np.abs(rows["aperture_um"] - float(aperture_um)) <= APERTURE_TOLERANCE_UM)
            ]
            if rows.empty:
                return CurrentLookup(
                    None,
                    f"no current calibrated with a {float(aperture_um):g} "
                    f"µm aperture at {voltage_kv:g} kV",
                )
        elif rows["aperture_um"].nunique() > 1:
            return CurrentLookup(None, "condenser aperture unknown and several are calibrated")
        by_spot = rows.groupby("spot")["current_pa"].apply(
            lambda c: float(c.iloc[0]) if len(c) == 1 else float(np.exp(np.log(c).mean()))
        )
        # (repeated measurements of one setting: their geometric mean)
        spots = by_spot.index.to_numpy()
        if spot in spots:
            return CurrentLookup(float(by_spot[spot]), "calibrated")
        if spot < spots.min() or spot > spots.max():
            return CurrentLookup(
                None,
                f"spot {spot:g} is outside the calibrated spots "
                f"{spots.min():g}-{spots.max():g}: current unknown",
            )
        upper = int(np.searchsorted(spots, spot))
        s0, s1 = spots[upper - 1], spots[upper]
        fraction = (spot - s0) / (s1 - s0)
        current = math.exp(
            (1 - fraction) * math.log(by_spot[s0]) + fraction * math.log(by_spot[s1])
        )
        return CurrentLookup(current, f"interpolated between spots {s0:g} and {s1:g}")

    # -- files ------------------------------------------------------------------------------
    def to_csv(self, path) -> None:
        self._rows.to_csv(Path(path), index=False)

    @classmethod
    def from_frame(cls, data: pd.DataFrame, source: str = "table") -> CurrentCalibration:
        """Rows from a frame with these columns (unknown or missing required ones named)."""
        table = cls()
        for line, record in read_table(
            data, CALIBRATION_COLUMNS, ("voltage_kv", "spot", "current_pa"), source
        ):
            try:
                table._rows.loc[len(table._rows)] = _calibration_row(**record)
            except InvalidParameterError as exc:
                raise InvalidDataError(f"{source}, row {line}: {exc}") from exc
        if len(table):
            table._sort(0)
        return table

    @classmethod
    def from_csv(cls, path) -> CurrentCalibration:
        try:
            data = pd.read_csv(Path(path), dtype={c: str for c in _TEXT})
        except (OSError, ValueError) as exc:
            raise InvalidDataError(f"cannot read {path} as CSV: {exc}") from exc
        return cls.from_frame(data, str(path))


def _calibration_row(
    *, voltage_kv, spot, current_pa, aperture_um=None, probe="", method="", date="", note=""
) -> dict:
    voltage_kv = to_number(voltage_kv, "voltage (kV)")
    spot = to_number(spot, "spot size")
    current_pa = to_number(current_pa, "current (pA)")
    for name, value in (("voltage", voltage_kv), ("spot size", spot), ("current", current_pa)):
        if not (math.isfinite(value) and value > 0):
            raise InvalidParameterError(f"{name} must be positive; got {value}")
    aperture = float("nan") if missing(aperture_um) else to_number(aperture_um, "aperture (µm)")
    if not missing(aperture) and aperture <= 0:
        raise InvalidParameterError(f"aperture must be positive; got {aperture}")
    return {
        "voltage_kv": voltage_kv,
        "spot": spot,
        "aperture_um": aperture,
        "probe": text_or_empty(probe),
        "current_pa": current_pa,
        "method": text_or_empty(method),
        "date": text_or_empty(date),
        "note": text_or_empty(note),
    }
