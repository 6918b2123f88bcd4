"""High-defocus calibrations at several defocus values and beam settings, and their lookup.

Pure computation (pandas): the widget shows and edits it, scripts use it directly.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from ..errors import CalibrationWarning, InvalidDataError, InvalidParameterError
from ..tables import Column, Table, flag
from .measure import HighDefocusResult

__all__ = ["CALIBRATIONS", "IMAGE_SHIFT", "MAGNIFICATION", "Added", "HighDefocusTable"]

#: What a row calibrates: the defocused image against focus (SerialEM's
#: ``HighFocusMagCal``, measured from two images), or the image-shift matrix at the
#: defocus against that at focus (``HighFocusISCal``, from two SerialEM series).
MAGNIFICATION, IMAGE_SHIFT = "magnification", "image shift"
CALIBRATIONS = (MAGNIFICATION, IMAGE_SHIFT)

#: ``intensity`` is whatever the microscope calls its beam intensity (C2 %, SerialEM's
#: Intensity, an illuminated-area setting): only compared, never converted.
SCHEMA = (
    Column("calibration", "text", default=MAGNIFICATION),
    Column("defocus_um", label="defocus", required=True),
    Column("intensity"),
    Column("spot", label="spot size", positive=True),
    Column("probe", "text"),
    Column("scale", required=True, positive=True),
    Column("rotation_deg", label="rotation", required=True),
    Column("score"),
    Column("date", "text"),
    Column("near_image", "text"),
    Column("far_image", "text"),
    Column("source", "text"),
)
COLUMNS = tuple(c.name for c in SCHEMA)
REQUIRED = tuple(c.name for c in SCHEMA if c.required)


@dataclass(frozen=True)
class Added:
    """Where :meth:`HighDefocusTable.add` put a calibration.

    Attributes
    ----------
    index : int
        Row of the new calibration (rows are kept sorted).
    replaced : dict or None
        The earlier calibration at nearly the same defocus and beam setting that the new
        one replaced, or None.
    """

    index: int
    replaced: dict[str, Any] | None

    @property
    def message(self) -> str:
        """A sentence for the user."""
        if self.replaced is None:
            return f"added as row {self.index + 1}"
        old = self.replaced
        return (
            f"replaced the calibration at {old['defocus_um']:g} µm, intensity "
            f"{_text(old['intensity'])} (scale {old['scale']:.4f}, rotation "
            f"{old['rotation_deg']:.2f}°, {old['date']})"
        )


#: Two rows of one setting and defocus differing by more than this conflict (the table's
#: add() replaces a row of the same setting; a file may still hold two).
CONFLICT_SCALE = 1e-4
CONFLICT_ROTATION_DEG = 0.01


class HighDefocusTable(Table):
    """Scale and rotation of the defocused image at several defocus values and beam settings.

    One row per calibration: ``calibration`` (``"magnification"``: the defocused image
    against focus; ``"image shift"``: the image-shift matrix at the defocus against that
    at focus, SerialEM's high-defocus image-shift calibration), ``defocus_um`` (µm,
    negative = underfocus), ``intensity``, ``spot`` (spot size), ``probe`` (probe mode,
    e.g. ``"nano"``/``"micro"``), ``scale``, ``rotation_deg`` (as
    :class:`~napari_emcal.highdefocus.HighDefocusResult`: from +x towards +y of the stored
    array), ``score``, ``date`` (ISO 8601), the two image (or series) names and
    ``source`` (where the row came from, in words). The two calibrations sit side by
    side; a lookup and an export use one at a time.

    Parameters
    ----------
    defocus_tolerance : float
        Relative difference of defocus under which a new calibration replaces an old one
        of the same probe, spot and intensity (at least 0.5 µm).
    intensity_tolerance : float
        Relative difference of intensity under which two settings count as the same.
    """

    def __init__(self, defocus_tolerance: float = 0.02, intensity_tolerance: float = 0.01):
        for name, value in (
            ("defocus_tolerance", defocus_tolerance),
            ("intensity_tolerance", intensity_tolerance),
        ):
            if not (np.isfinite(value) and value >= 0):
                raise InvalidParameterError(f"{name} must be >= 0; got {value}")
        super().__init__()
        self.defocus_tolerance = float(defocus_tolerance)
        self.intensity_tolerance = float(intensity_tolerance)

    COLUMNS = SCHEMA
    SORT_BY = ("calibration", "probe", "spot", "intensity", "defocus_um")
    NAME = "high-defocus table"

    def check(self, rows: pd.DataFrame) -> pd.Series:
        defocus = rows["defocus_um"]
        problems = flag(
            pd.Series("", index=rows.index, dtype=object),
            defocus.isna() | (defocus == 0),
            lambda v: (
                f"defocus must be a non-zero number of µm; got {v} (at focus the scale "
                "is 1 and the rotation 0 by definition)"
            ),
            defocus,
        )
        problems = flag(
            problems,
            ~rows["calibration"].isin(CALIBRATIONS),
            lambda v: f"calibration must be {' or '.join(map(repr, CALIBRATIONS))}; got {v!r}",
            rows["calibration"],
        )
        return problems.where(problems != "", super().check(rows))

    # -- editing ------------------------------------------------------------------------
    def add(
        self,
        defocus_um: float,
        scale: float,
        rotation_deg: float,
        *,
        intensity: float | None = None,
        spot: float | None = None,
        probe: str = "",
        score: float = float("nan"),
        date: str | None = None,
        near_image: str = "",
        far_image: str = "",
        calibration: str = MAGNIFICATION,
        source: str = "",
    ) -> Added:
        """Add a calibration; one of the same kind at nearly the same defocus and setting
        is replaced.

        Raises
        ------
        InvalidParameterError
            Defocus zero or not finite, scale not positive, rotation not finite.
        """
        row = self.prepare(
            pd.DataFrame(
                [
                    {
                        "defocus_um": defocus_um,
                        "scale": scale,
                        "rotation_deg": rotation_deg,
                        "intensity": intensity,
                        "spot": spot,
                        "probe": probe,
                        "score": score,
                        "date": date or datetime.now().isoformat(timespec="seconds"),
                        "near_image": near_image,
                        "far_image": far_image,
                        "calibration": calibration,
                        "source": source,
                    }
                ]
            )
        )
        same = self._same_setting(row.iloc[0].to_dict())
        replaced = None
        if same is not None:
            replaced = self._rows.loc[same].to_dict()
            self._rows = self._rows.drop(same).reset_index(drop=True)
        return Added(index=int(self._insert(row)[0]), replaced=replaced)

    def add_result(self, result: HighDefocusResult, defocus_um: float, **setting) -> Added:
        """Add a measurement (its scale, rotation and score) at ``defocus_um``."""
        return self.add(
            defocus_um, result.scale, result.rotation_deg, score=result.score, **setting
        )

    def history_entry(self, index: int) -> tuple[dict, str]:
        """``(values, setting)`` of row ``index`` as the calibration history keeps them."""
        from ..history import high_defocus_setting

        row = self.frame.iloc[index]
        values = {"scale": float(row["scale"]), "rotation_deg": float(row["rotation_deg"])}
        setting = high_defocus_setting(
            row["defocus_um"], probe=row["probe"], spot=row["spot"], intensity=row["intensity"]
        )
        return values, setting

    def _same_setting(self, row: dict) -> int | None:
        """Index of a row with the same probe/spot and nearly the same intensity and defocus."""
        for index, other in self._rows.iterrows():
            if (
                other["calibration"] == row["calibration"]
                and other["probe"] == row["probe"]
                and _same(other["spot"], row["spot"], 0.0)
                and _same(other["intensity"], row["intensity"], self.intensity_tolerance)
                and abs(other["defocus_um"] - row["defocus_um"])
                <= max(0.5, self.defocus_tolerance * abs(row["defocus_um"]))
            ):
                return int(index)
        return None

    # -- lookup ---------------------------------------------------------------------------
    def interpolate(
        self,
        defocus_um: float,
        intensity: float | None = None,
        spot: float | None = None,
        probe: str | None = None,
        *,
        calibration: str = MAGNIFICATION,
    ) -> tuple[float, float]:
        """Scale and rotation (degrees) expected at a defocus and beam setting, from the
        rows of one ``calibration`` (default the image's magnification and rotation).

        Rules: only rows of the same probe mode; the nearest calibrated spot size; between
        calibrated defocus values linear; between focus and the nearest calibrated defocus
        linear from (scale 1, rotation 0); beyond the largest calibrated defocus (or on the
        other side of focus from every calibration) the nearest values, with a
        :class:`~napari_emcal.errors.CalibrationWarning` that they are not extrapolated;
        between calibrated intensities linear, outside them the nearest intensity (warned).

        Parameters
        ----------
        defocus_um : float
            Defocus in µm (negative = underfocus), as in the table.
        intensity, spot, probe : optional
            The beam setting. Each may be left out when the table has only one value of it.
        calibration : {"magnification", "image shift"}
            Which calibration's rows to use.

        Raises
        ------
        InvalidDataError
            The table is empty.
        InvalidParameterError
            Defocus not finite; no row of that probe mode; a setting left out that the table
            has several values of.
        """
        if not np.isfinite(defocus_um):
            raise InvalidParameterError(f"defocus must be finite; got {defocus_um}")
        if len(self._rows) == 0:
            raise InvalidDataError(
                "the high-defocus table is empty: measure and accept a calibration first"
            )
        if calibration not in CALIBRATIONS:
            raise InvalidParameterError(
                f"calibration must be {' or '.join(map(repr, CALIBRATIONS))}; got {calibration!r}"
            )
        rows = self._rows[self._rows["calibration"] == calibration]
        if rows.empty:
            raise InvalidDataError(
                f"the high-defocus table holds no {calibration} calibration (only "
                f"{', '.join(sorted(set(self._rows['calibration'])))})"
            )
        probes = sorted(set(rows["probe"]))
        if probe is None:
            if len(probes) > 1:
                raise InvalidParameterError(
                    f"the table has several probe modes ({', '.join(map(repr, probes))}); say which"
                )
            probe = probes[0]
        rows = rows[rows["probe"] == probe]
        if rows.empty:
            raise InvalidParameterError(
                f"no calibration for probe mode {probe!r}; "
                f"calibrated: {', '.join(map(repr, probes))}"
            )
        rows = self._nearest_spot(rows, spot)
        return self._between_intensities(rows, float(defocus_um), intensity)

    def _nearest_spot(self, rows: pd.DataFrame, spot) -> pd.DataFrame:
        known = rows[rows["spot"].notna()]
        if known.empty:  # spot sizes not recorded: all rows are one setting
            return rows
        spots = np.unique(known["spot"].to_numpy())
        if spot is None or _missing(spot):
            if len(spots) > 1:
                raise InvalidParameterError(
                    f"the table has several spot sizes "
                    f"({', '.join(f'{s:g}' for s in spots)}); say which"
                )
            return known
        nearest = spots[np.argmin(np.abs(spots - float(spot)))]
        if nearest != float(spot):
            warnings.warn(
                f"spot size {spot:g} is not calibrated; using spot {nearest:g}",
                CalibrationWarning,
                stacklevel=3,
            )
        return known[known["spot"] == nearest]

    def _between_intensities(self, rows: pd.DataFrame, defocus: float, intensity):
        settings = _settings(rows["intensity"].to_numpy(), self.intensity_tolerance)
        if len(settings) == 1:
            value, members = settings[0]
            if (
                intensity is not None
                and not _missing(intensity)
                and not _missing(value)
                and not _same(value, float(intensity), self.intensity_tolerance)
            ):
                warnings.warn(
                    f"intensity {intensity:g} is not calibrated; using the only "
                    f"calibrated intensity {value:g}",
                    CalibrationWarning,
                    stacklevel=3,
                )
            return self._along_defocus(rows.iloc[members], defocus)
        if intensity is None or _missing(intensity):
            values = ", ".join(_text(v) for v, _ in settings)
            raise InvalidParameterError(f"the table has several intensities ({values}); say which")
        intensity = float(intensity)
        known = [(v, m) for v, m in settings if not _missing(v)]
        values = np.array([v for v, _ in known])
        if intensity <= values[0] or intensity >= values[-1]:
            value, members = known[0] if intensity <= values[0] else known[-1]
            if not _same(value, intensity, self.intensity_tolerance):
                warnings.warn(
                    f"intensity {intensity:g} is outside the calibrated range "
                    f"{values[0]:g}-{values[-1]:g}; using {value:g}, not "
                    "extrapolated",
                    CalibrationWarning,
                    stacklevel=3,
                )
            return self._along_defocus(rows.iloc[members], defocus)
        upper = int(np.searchsorted(values, intensity))
        (v0, m0), (v1, m1) = known[upper - 1], known[upper]
        low = np.array(self._along_defocus(rows.iloc[m0], defocus))
        high = np.array(self._along_defocus(rows.iloc[m1], defocus))
        fraction = (intensity - v0) / (v1 - v0)
        scale, rotation = low + fraction * (high - low)
        return float(scale), float(rotation)

    @staticmethod
    def _along_defocus(rows: pd.DataFrame, defocus: float) -> tuple[float, float]:
        """Piecewise linear in defocus on one side of focus, anchored at (0, 1, 0)."""
        if defocus == 0:
            return 1.0, 0.0
        side = rows[np.sign(rows["defocus_um"]) == np.sign(defocus)]
        if side.empty:
            warnings.warn(
                f"nothing is calibrated on the {'under' if defocus < 0 else 'over'}"
                "focus side; scale 1 and rotation 0 assumed",
                CalibrationWarning,
                stacklevel=4,
            )
            return 1.0, 0.0
        groups = side.groupby(side["defocus_um"].abs())
        spread = groups[["scale", "rotation_deg"]].agg(lambda v: v.max() - v.min())
        conflict = spread[
            (spread["scale"] > CONFLICT_SCALE) | (spread["rotation_deg"] > CONFLICT_ROTATION_DEG)
        ]
        if len(conflict):  # two calibrations of one setting disagree: never average them
            at = float(conflict.index[0]) * np.sign(defocus)
            found = side[side["defocus_um"] == at]
            raise InvalidDataError(
                f"the high-defocus table holds {len(found)} different calibrations at "
                f"{at:g} µm for this setting (scale "
                + " vs ".join(f"{v:.5g}" for v in found["scale"])
                + ", rotation "
                + " vs ".join(f"{v:.3g}°" for v in found["rotation_deg"])
                + "): remove the wrong one"
            )
        side = groups.mean(numeric_only=True)
        distance = np.concatenate([[0.0], side.index.to_numpy()])
        scales = np.concatenate([[1.0], side["scale"].to_numpy()])
        rotations = np.concatenate([[0.0], side["rotation_deg"].to_numpy()])
        if abs(defocus) > distance[-1]:
            warnings.warn(
                f"defocus {defocus:g} µm is beyond the largest calibrated "
                f"({math.copysign(distance[-1], defocus):g} µm); the values there "
                "are used, not extrapolated",
                CalibrationWarning,
                stacklevel=4,
            )
        return (
            float(np.interp(abs(defocus), distance, scales)),
            float(np.interp(abs(defocus), distance, rotations)),
        )


# -- helpers --------------------------------------------------------------------------------
def _missing(value) -> bool:
    return (
        value is None
        or (isinstance(value, float) and math.isnan(value))
        or (isinstance(value, str) and not value.strip())
    )


def _same(a: float, b: float, tolerance: float) -> bool:
    if _missing(a) or _missing(b):
        return _missing(a) and _missing(b)
    return abs(a - b) <= tolerance * max(abs(a), abs(b)) + 1e-12


def _settings(values: np.ndarray, tolerance: float) -> list[tuple[float, np.ndarray]]:
    """Group row positions by intensity (values within ``tolerance`` are one setting).

    Returns (representative value, positions) in increasing intensity, unknown last.
    """
    order = sorted(range(len(values)), key=lambda i: (math.isnan(values[i]), values[i]))
    groups: list[tuple[float, list[int]]] = []
    for i in order:
        if groups and _same(groups[-1][0], values[i], tolerance):
            groups[-1][1].append(i)
        else:
            groups.append((values[i], [i]))
    return [(value, np.asarray(members)) for value, members in groups]


def _text(value) -> str:
    return "unknown" if _missing(value) else f"{value:g}"
