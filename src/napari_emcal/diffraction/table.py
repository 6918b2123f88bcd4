"""A session's camera-length calibrations, one row per nominal setting (camera length as
the microscope names it, and beam energy), with a consistency check (pandas).

Pure computation: the widget shows it, the tests and scripts use it directly.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..tables import Column, MedianCheckedTable
from .calibrate import DiffractionCalibration

__all__ = ["CameraLengthTable"]

SCHEMA = (
    Column("image", "text"),
    Column("nominal_camera_length_mm", label="nominal camera length", positive=True),
    Column("beam_energy_kev", label="beam energy", required=True, positive=True),
    Column("camera_length_mm", label="camera length", required=True, positive=True),
    Column("camera_length_sigma_mm", label="camera length sigma", positive=True),
    Column("axis_ratio", label="ellipse axis ratio", positive=True),
    Column("ellipse_angle_deg", label="ellipse angle"),
    Column("centre_y_px"),
    Column("centre_x_px"),
    Column("detector_pixel_um", label="detector pixel", positive=True),
    Column("standard", "text"),
)
DERIVED = ("calibrated_over_nominal", "ratio_outlier")


class CameraLengthTable(MedianCheckedTable):
    """Camera lengths measured at several nominal settings.

    Derived columns:

    ``calibrated_over_nominal``
        Calibrated / nominal camera length: nearly the same for every setting of one
        projector system (the nominal values are often a few percent off together).
    ``ratio_outlier``
        True where that ratio differs from the median by more than ``tolerance``
        (a mistyped nominal value, or a mis-measured row).

    Parameters
    ----------
    tolerance : float, optional
        Relative deviation from the median ratio that counts as an outlier (default
        :attr:`TOLERANCE`).
    """

    COLUMNS = SCHEMA
    DERIVED = DERIVED
    SORT_BY = ("beam_energy_kev", "nominal_camera_length_mm")
    NAME = "camera-length table"
    TOLERANCE = 0.03

    def add(
        self,
        result: DiffractionCalibration,
        *,
        nominal_camera_length: float | None = None,
        image: str = "",
    ) -> int:
        """Add a calibration (``nominal_camera_length`` in m); returns its row index."""
        return self.add_row(
            image=image,
            nominal_camera_length_mm=(
                nominal_camera_length * 1e3 if nominal_camera_length else None
            ),
            beam_energy_kev=result.beam_energy / 1e3,
            camera_length_mm=result.camera_length * 1e3,
            camera_length_sigma_mm=result.camera_length_sigma * 1e3,
            axis_ratio=result.axis_ratio,
            ellipse_angle_deg=result.angle_deg,
            centre_y_px=result.centre[0],
            centre_x_px=result.centre[1],
            detector_pixel_um=result.detector_pixel_size * 1e6,
            standard=result.standard,
        )

    @property
    def frame(self) -> pd.DataFrame:
        rows = self._rows.copy()
        rows["calibrated_over_nominal"] = (
            rows["camera_length_mm"] / rows["nominal_camera_length_mm"]
        )
        rows["ratio_outlier"] = self.median_outliers(rows["calibrated_over_nominal"])
        rows["calibrated_over_nominal"] = rows["calibrated_over_nominal"].astype(float)
        return rows

    def camera_length_at(self, nominal_mm: float, beam_energy_kev: float) -> float:
        """The calibrated camera length (mm) of a row at this setting, else NaN."""
        rows = self._rows
        hit = rows[
            np.isclose(rows["nominal_camera_length_mm"], nominal_mm)
            & np.isclose(rows["beam_energy_kev"], beam_energy_kev)
        ]
        return float(hit["camera_length_mm"].iloc[-1]) if len(hit) else float("nan")
