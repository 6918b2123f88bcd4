"""The descan in the overfocus dock: shown, editable, fitted with its uncertainty, saved."""

import numpy as np
import pytest

from napari_emcal.overfocus import TwinParams, simulate
from napari_emcal.overfocus.twin import load_uncertainty
from napari_emcal.specimens import detailed_specimen

pytestmark = pytest.mark.gui

DESCAN = ((0.12, -0.06), (0.05, 0.1))
ZERO = ((0.0, 0.0), (0.0, 0.0))


def _wait(qtbot, widget, timeout=60000):
    qtbot.waitUntil(lambda: widget.updates.idle and not widget.task.running, timeout=timeout)


def _truth():
    return TwinParams(
        overfocus=1.2e-6,
        scan_pixel_size=1e-9,
        camera_length=0.15,
        detector_pixel_size=55e-6,
        cy=31.6,
        cx=32.3,
        scan_rotation=83.0,
        flip_y=True,
        semiconv=12e-3,
        descan=DESCAN,
    )


@pytest.fixture
def dock(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1366, 768)
    truth = _truth()
    data = simulate(
        detailed_specimen((160, 160), seed=1), (48, 48), (64, 64), truth, dose=5e4, seed=3
    )
    start = truth.replace(overfocus=1.5e-6, scan_rotation=0.0, flip_y=False, descan=ZERO)
    layer = viewer.add_image(
        data, name="walk", metadata={"emcal": {"nominal": start.to_json_dict()}}
    )
    _, widget = viewer.window.add_plugin_dock_widget("napari-emcal", "Overfocus calibration")
    widget.set_layer(layer)
    widget.preview.enabled_box.value = False
    _wait(qtbot, widget)
    return viewer, layer, widget, truth


def test_descan_is_shown_edited_and_fitted(dock, qtbot, tmp_path):
    viewer, layer, widget, truth = dock
    controls = widget.twin.descan
    assert widget.params().descan == ZERO
    # typed: the twin follows, the control says so
    edited = []
    widget.twin.edited.connect(lambda: edited.append(1))
    controls.boxes[1].value = 0.02
    assert widget.params().descan == ((0.0, 0.02), (0.0, 0.0)) and edited
    assert widget.twin.field_sources.sources["descan"] == "typed by the user"
    widget.twin.show(truth.replace(descan=ZERO))
    # the 2x2 boxes keep the dock narrow at 1366x768
    row = controls.native
    assert row.isVisible() and row.width() >= row.minimumSizeHint().width()
    assert widget.native.minimumSizeHint().width() < 1366 / 3
    # fitted with the rest, with its standard errors in the tooltips and the status line
    widget.calibration.fit_descan.value = True
    widget.run_calibration(refine=True)
    _wait(qtbot, widget)
    p = widget.params()
    np.testing.assert_allclose(p.descan, DESCAN, atol=0.003)
    # the dock shows what the API finds: right within its stated uncertainty (the API's
    # accuracy is tested in tests/overfocus/test_calibrate_descan.py)
    uncertainty = widget.last_calibration.uncertainty
    assert p.flip_y and abs(p.scan_rotation - 83.0) < 3 * uncertainty["scan_rotation"]
    sigma = uncertainty["descan"]
    assert "±" in controls.boxes[0].tooltip and "descan ±" in widget.calibration.status.value
    # saved with the parameters and their uncertainty
    widget.actions.save(tmp_path / "twin.json")
    assert TwinParams.load(tmp_path / "twin.json").descan == p.descan
    np.testing.assert_allclose(load_uncertainty(tmp_path / "twin.json")["descan"], sigma)
