"""Current lookup: calibrated, interpolated between spots, unknown otherwise."""

import math

import numpy as np
import pandas as pd
import pytest

from napari_emcal.dose import CurrentCalibration
from napari_emcal.errors import InvalidDataError, InvalidParameterError


@pytest.fixture
def calibration():
    c = CurrentCalibration()
    c.add(300, 3, 4000, aperture_um=70, probe="micro", method="faraday cup")
    c.add(300, 5, 1000, aperture_um=70, probe="micro")
    c.add(300, 5, 100, aperture_um=50, probe="micro")
    c.add(200, 5, 800, aperture_um=70, probe="micro")
    return c


def test_calibrated_current(calibration):
    found = calibration.lookup(300, 5, 70, "micro")
    assert found.current_pa == 1000 and found.message == "calibrated"
    assert calibration.lookup(300.5, 5, 70.4, "micro").current_pa == 1000  # within tolerance
    assert calibration.lookup(300, 5, 50, "micro").current_pa == 100


def test_between_spots_geometric(calibration):
    found = calibration.lookup(300, 4, 70, "micro")
    assert found.current_pa == pytest.approx(math.sqrt(4000 * 1000))
    assert "interpolated between spots 3 and 5" in found.message


@pytest.mark.parametrize(
    "query, message",
    [
        ((300, 7, 70, "micro"), "outside the calibrated spots 3-5"),
        ((120, 5, 70, "micro"), "no current calibrated at 120 kV"),
        ((300, 5, 30, "micro"), "30 µm aperture"),
        ((300, 5, 70, "nano"), "probe 'nano'"),
        ((300, 5, None, "micro"), "aperture unknown and several are calibrated"),
        ((None, 5, 70, "micro"), "voltage unknown"),
    ],
)
def test_unknown_where_the_table_cannot_say(calibration, query, message):
    found = calibration.lookup(*query)
    assert found.current_pa is None and message in found.message


def test_repeated_measurements_averaged():
    c = CurrentCalibration()
    c.add(300, 5, 900)
    c.add(300, 5, 1100)
    assert c.lookup(300, 5).current_pa == pytest.approx(math.sqrt(900 * 1100))


def test_invalid_rows_and_csv(calibration, tmp_path):
    with pytest.raises(InvalidParameterError, match="current must be positive"):
        calibration.add(300, 5, 0)
    with pytest.raises(InvalidParameterError, match="must be a number"):
        calibration.update(0, current_pa="lots")
    path = tmp_path / "currents.csv"
    calibration.to_csv(path)
    back = CurrentCalibration.from_csv(path)
    pd.testing.assert_frame_equal(back.frame, calibration.frame)
    path.write_text("voltage_kv,spot,colour\n300,5,red\n")
    with pytest.raises(InvalidDataError, match="unknown column.*colour"):
        CurrentCalibration.from_csv(path)
    path.write_text("voltage_kv,spot\n300,5\n")
    with pytest.raises(InvalidDataError, match="missing column.*current_pa"):
        CurrentCalibration.from_csv(path)


def test_merge_adds_only_what_the_table_does_not_hold(calibration):
    records = [
        {"voltage_kv": 300, "spot": 5, "current_pa": 7.0},  # held: kept as it is
        {"voltage_kv": 300, "spot": 7, "current_pa": 250.0, "method": "faraday cup", "x": 1},
    ]
    assert calibration.merge(records) == 1
    assert calibration.merge(records) == 0
    frame = calibration.frame
    assert len(frame) == 5 and 7.0 not in set(frame.current_pa)
    assert calibration.merge(None) == 0


def test_two_currents_at_one_setting_conflict_and_are_never_averaged():
    # issue 38: 1200 pA and 12 pA at one setting gave 120 pA "calibrated"
    c = CurrentCalibration()
    c.add(300, 5, 1200, aperture_um=70)
    c.add(300, 5, 12, aperture_um=70)
    c.add(300, 7, 250, aperture_um=70)
    c.add(300, 9, 50, aperture_um=70)
    found = c.lookup(300, 5, 70)
    assert found.current_pa is None and "conflicting" in found.message
    assert "12, 1200 pA" in found.message
    assert c.lookup(300, 6, 70).current_pa is None  # interpolating from the conflict either
    assert c.lookup(300, 8, 70).current_pa == pytest.approx(np.sqrt(250 * 50))  # elsewhere fine
    ((rows, line),) = c.conflicts()
    assert "300 kV, spot 5, 70 µm: 12, 1200 pA" in line and len(rows) == 2


def test_repeated_currents_that_agree_are_averaged():
    c = CurrentCalibration()
    c.add(300, 5, 1000)
    c.add(300, 5, 1100)
    found = c.lookup(300, 5)
    assert found.current_pa == pytest.approx(np.sqrt(1000 * 1100)) and not c.conflicts()
