"""Beam-current calibration: the current measured per voltage, spot size, aperture and probe.

Pure computation (pandas). A row is one measurement with a Faraday cup, the screen or camera
counts; :meth:`CurrentCalibration.lookup` finds the current for an image's conditions, and
says "unknown" where the table cannot support an answer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..tables import Column, Table, missing

__all__ = ["CALIBRATION_COLUMNS", "CurrentCalibration", "CurrentLookup"]

SCHEMA = (
    Column("voltage_kv", label="voltage", required=True, positive=True),
    Column("spot", label="spot size", required=True, positive=True),
    Column("aperture_um", label="aperture", positive=True),
    Column("probe", "text"),
    Column("current_pa", label="current", required=True, positive=True),
    Column("method", "text"),
    Column("date", "text"),
    Column("note", "text"),
)
CALIBRATION_COLUMNS = tuple(c.name for c in SCHEMA)
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


#: Repeated measurements of one setting further apart than this ratio conflict.
CONFLICT_RATIO = 1.5


class CurrentCalibration(Table):
    """Measured beam currents keyed by voltage (kV), spot size, condenser aperture (µm) and
    probe mode; currents in pA.

    Between two calibrated spot sizes of the same voltage, aperture and probe the current is
    interpolated linearly in log(current) (each spot step changes the current by a roughly
    constant factor); outside the calibrated spots, or for another voltage, aperture or probe,
    it is unknown. An empty ``probe`` or aperture in a row matches any.
    """

    COLUMNS = SCHEMA
    SORT_BY = ("voltage_kv", "aperture_um", "probe", "spot")
    NAME = "current calibration"

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
        return self.add_row(
            voltage_kv=voltage_kv,
            spot=spot,
            current_pa=current_pa,
            aperture_um=aperture_um,
            probe=probe,
            method=method,
            date=date,
            note=note,
        )

    def merge(self, records) -> int:
        """Add the measurements of ``records`` (dicts of this table's columns, e.g. the
        Faraday-cup readings a file carries) for voltages and spots the table does not hold
        yet; returns how many were added."""
        added = 0
        for record in records or ():
            known = self.frame
            same = (known.voltage_kv == record.get("voltage_kv")) & (
                known.spot == record.get("spot")
            )
            if not same.any():
                self.add(**{k: v for k, v in record.items() if k in CALIBRATION_COLUMNS})
                added += 1
        return added

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
        # (repeated measurements of one setting: their geometric mean, unless they disagree)
        spread = rows.groupby("spot")["current_pa"].agg(lambda c: c.max() / c.min())
        spots = by_spot.index.to_numpy()

        def conflict(used) -> CurrentLookup | None:
            for s in used:
                if spread[s] > CONFLICT_RATIO:
                    found = rows[rows["spot"] == s]["current_pa"]
                    return CurrentLookup(
                        None,
                        f"conflicting current calibrations at spot {s:g}, {voltage_kv:g} kV ("
                        + " vs ".join(f"{v:g} pA" for v in found)
                        + "): remove the wrong one",
                    )
            return None

        if spot in spots:
            return conflict([spot]) or CurrentLookup(float(by_spot[spot]), "calibrated")
        if spot < spots.min() or spot > spots.max():
            return CurrentLookup(
                None,
                f"spot {spot:g} is outside the calibrated spots "
                f"{spots.min():g}-{spots.max():g}: current unknown",
            )
        upper = int(np.searchsorted(spots, spot))
        s0, s1 = spots[upper - 1], spots[upper]
        if conflict([s0, s1]):
            return conflict([s0, s1])
        fraction = (spot - s0) / (s1 - s0)
        current = math.exp(
            (1 - fraction) * math.log(by_spot[s0]) + fraction * math.log(by_spot[s1])
        )
        return CurrentLookup(current, f"interpolated between spots {s0:g} and {s1:g}")
