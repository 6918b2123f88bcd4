"""The overfocus dock's session model, without Qt: what it remembers, what it forgets when
the data change, and what a stopped or orphaned run leaves."""

import ast
from pathlib import Path

import numpy as np
import pytest

import napari_emcal.overfocus.session as session_module
from napari_emcal.overfocus.session import OverfocusSession
from napari_emcal.overfocus.twin import TwinParams


def twin(**changes):
    base = TwinParams(
        overfocus=1e-6,
        scan_pixel_size=1e-9,
        camera_length=0.15,
        detector_pixel_size=55e-6,
        cy=31.5,
        cx=31.5,
        scan_rotation=0.0,
        flip_y=False,
    )
    return base.replace(**changes)


class _Result:
    """A stand-in for a CalibrationResult: params and standard errors."""

    def __init__(self, params, sigma):
        self.params, self.uncertainty = params, sigma


@pytest.fixture
def session():
    model = OverfocusSession()
    model.events = []
    model.show_params.connect(lambda p, source, names: model.events.append(("show", p, source)))
    model.calibration_changed.connect(lambda: model.events.append(("calibration",)))
    model.retargeted.connect(lambda: model.events.append(("retargeted",)))
    model.retarget("dataset A", twin())
    model.events.clear()
    return model


def test_imports_no_qt_or_napari():
    tree = ast.parse(Path(session_module.__file__).read_text())
    imported = {
        (node.module or "") if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    }
    assert not any(name.split(".")[0] in ("qtpy", "napari", "magicgui") for name in imported)


def test_a_calibration_waits_for_accept_and_its_errors_hold_while_unchanged(session):
    start, found = twin(), twin(scan_rotation=83.0, flip_y=True)
    token = session.begin_calibration(start)
    assert session.running and session.pending is None
    session.offer_live(token, twin(scan_rotation=40.0))
    assert session.take_live().scan_rotation == 40.0 and session.take_live() is None
    assert session.calibration_done(token, _Result(found, {"scan_rotation": 0.01}), ["flip_y"])
    assert ("show", found, "computed by the automatic calibration") in session.events
    session.mark_shown(found)
    assert session.pending is not None and not session.running
    assert session.uncertainty(found) == {"scan_rotation": 0.01}
    assert session.uncertainty(found.replace(overfocus=2e-6)) == {}  # changed by hand
    accepted = session.accept(found)
    assert accepted.params == found and session.pending is None
    assert session.accepted.params == found and session.settled == found
    assert session.last_calibration.params == found


def test_revert_and_a_stopped_run_show_the_parameters_from_before(session):
    start = twin(overfocus=3e-6)
    session.settle(start)
    token = session.begin_calibration(start)
    session.offer_live(token, twin(scan_rotation=12.0))
    session.events.clear()
    live_shown = twin(scan_rotation=12.0)
    assert session.calibration_stopped(token, live_shown) == start
    assert ("show", start, None) in session.events  # the controls go back
    assert not session.running and session.pending is None

    token = session.begin_calibration(start)
    session.calibration_done(token, twin(scan_rotation=5.0))
    session.events.clear()
    assert session.revert(twin(scan_rotation=5.0)) == start
    assert ("show", start, None) in session.events and session.pending is None


def test_settling_during_a_calibration_keeps_what_revert_goes_back_to(session):
    start = twin(overfocus=2e-6)
    session.settle(start)
    token = session.begin_calibration(start)
    session.settle(twin(scan_rotation=30.0))  # live values shown meanwhile are not settled
    session.calibration_done(token, twin(scan_rotation=50.0))
    session.settle(twin(scan_rotation=51.0))  # nor edits while the result waits
    assert session.revert() == start


def test_retarget_forgets_everything_derived_from_the_previous_data(session):
    token = session.begin_calibration(twin())
    session.calibration_done(token, _Result(twin(scan_rotation=83.0), {"overfocus": 1e-9}))
    session.accept(twin(scan_rotation=83.0))
    assert session.images_computed(session.run_token(), {"sum": np.ones((2, 2))}, twin())
    other = twin(camera_length=0.6)
    session.retarget("dataset B", other)
    assert session.dataset == "dataset B" and ("retargeted",) in session.events
    fresh = OverfocusSession()
    fresh.retarget("dataset B", other)
    for name in ("pending", "accepted", "last_calibration", "last_params", "settled", "running"):
        assert getattr(session, name) == getattr(fresh, name), name
    assert session.last_images == fresh.last_images == {}


def test_results_of_a_run_on_the_previous_data_are_dropped(session):
    token = session.begin_calibration(twin())
    full_pass = session.run_token()
    session.retarget("dataset B", twin(camera_length=0.6))
    session.events.clear()
    session.offer_live(token, twin(scan_rotation=7.0))
    assert session.take_live() is None
    assert not session.calibration_done(token, twin(scan_rotation=9.0))
    assert session.calibration_stopped(token, None) is None
    assert not session.images_computed(full_pass, {"sum": np.ones((2, 2))}, twin())
    assert session.events == [] and session.last_calibration is None
    assert session.last_images == {}


def test_use_shows_and_settles_values_from_elsewhere(session):
    loaded = twin(overfocus=5e-6)
    session.use(loaded, "loaded from twin.json")
    assert ("show", loaded, "loaded from twin.json") in session.events
    assert session.settled == loaded
