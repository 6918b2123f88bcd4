"""The "High-defocus mag" widget with a real viewer, lines added to its Shapes layers."""

import numpy as np
import pytest

from napari_emcal.highdefocus import HighDefocusTable
from napari_emcal.highdefocus._qt.widget import SERIALEM_HIGH_DEFOCUS

pytestmark = pytest.mark.gui


def _wait(qtbot, widget, timeout=30000):
    qtbot.waitUntil(lambda: widget._worker is None, timeout=timeout)


@pytest.fixture
def pair(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-emcal", "high_defocus_pair")
    near, far = viewer.layers[0], viewer.layers[1]
    _, widget = viewer.window.add_plugin_dock_widget("napari-emcal", "High-defocus mag")
    return viewer, near, far, widget


def draw_lines(widget, near, far, error=2.0):
    """Lines between two particles visible in both images, each end a little off."""
    truth = far.metadata["emcal"]
    landmarks_near = np.array(truth["landmarks_near"])
    landmarks_far = np.array(truth["landmarks_far"])
    inside = ((landmarks_far > 40) & (landmarks_far < 984)).all(axis=1)
    first, second = np.flatnonzero(inside)[[0, 1]]
    offsets = np.array([[error, -error], [-error, error]])
    for which, ends in (
        ("near", landmarks_near[[first, second]] + offsets),
        ("far", landmarks_far[[first, second]] - offsets),
    ):
        widget.start_line(which)
        widget.line_layer(which).add_lines(ends)
    return landmarks_near[[first, second]]


def test_images_and_setting_come_from_the_layers(pair):
    viewer, near, far, widget = pair
    assert widget.near.value is near and widget.far.value is far
    assert widget.setting.defocus.value == -150.0
    assert widget.setting.intensity.value == "42.5" and widget.setting.spot.value == 5
    assert widget.setting.probe.value == "micro"


def test_draw_measure_judge_accept(pair, qtbot):
    viewer, near, far, widget = pair
    widget.start_line("near")
    line_layer = viewer.layers[f"{near.name} · line"]
    assert line_layer.mode == "add_line" and viewer.layers.selection.active is line_layer
    assert near.visible and not far.visible
    assert not widget.run()  # no lines yet: a message, nothing started
    assert "Draw a line on the near-focus and the defocused image" in widget.status.value

    draw_lines(widget, near, far)
    assert "from the lines: scale 1.1" in widget.lines_label.value
    assert widget.run()
    _wait(qtbot, widget)
    truth = far.metadata["emcal"]["ground_truth"]
    result = widget.result
    assert result.scale == pytest.approx(truth["scale"], rel=2e-3)
    assert result.rotation_deg == pytest.approx(truth["rotation_deg"], abs=0.1)
    assert "scale 1.12" in widget.result_label.value

    aligned = viewer.layers[f"{far.name} · aligned"]
    assert aligned.data.shape == near.data.shape
    valid = np.isfinite(aligned.data)
    correlation = np.corrcoef(aligned.data[valid], near.data[valid].astype(float))[0, 1]
    assert correlation > 0.5  # the defocused image lies on the near-focus one
    widget.aligned.blend.value = 0.3
    assert aligned.opacity == pytest.approx(0.3)
    widget.flip()
    assert not aligned.visible
    widget.flip()
    assert aligned.visible and aligned.opacity == 1.0

    # measuring again updates the aligned layer in place
    count = len(viewer.layers)
    widget.run()
    _wait(qtbot, widget)
    assert len(viewer.layers) == count and viewer.layers[aligned.name] is aligned

    index = widget.accept()
    assert index == 0 and len(widget.table) == 1
    row = widget.table.frame.loc[0]
    assert row.defocus_um == -150 and row.intensity == 42.5 and row.spot == 5
    assert row.probe == "micro" and row.scale == pytest.approx(truth["scale"], rel=2e-3)
    assert row.near_image == near.name and row.far_image == far.name
    assert widget.session.view.widget.native.rowCount() == 1
    assert not widget.accept_button.enabled  # accepted once
    assert len(widget.plot.scale_axes.lines) >= 2  # points and the interpolation curve
    # kept in the history at its setting, and shown in the dock's drift plot
    from napari_emcal.history import History

    (entry,) = History().entries("high_defocus")
    assert entry.setting == "defocus_um=-150, probe=micro, spot=5, intensity=42.5"
    assert entry.values["scale"] == pytest.approx(row.scale)
    assert "the first at this setting" in widget.status.value
    widget.history.shown.value = True
    assert widget.history.points()[1] == [pytest.approx(row.scale)]


def test_changed_lines_need_a_new_measurement(pair, qtbot):
    viewer, near, far, widget = pair
    draw_lines(widget, near, far)
    widget.run()
    _wait(qtbot, widget)
    assert widget.accept_button.enabled
    widget.line_layer("far").add_lines(np.array([[100.0, 100.0], [500.0, 520.0]]))
    assert not widget.accept_button.enabled
    assert widget.accept() is None and len(widget.table) == 0


def test_reject_removes_the_aligned_image(pair, qtbot):
    viewer, near, far, widget = pair
    draw_lines(widget, near, far)
    widget.run()
    _wait(qtbot, widget)
    widget.reject()
    assert f"{far.name} · aligned" not in viewer.layers
    assert widget.result is None and not widget.accept_button.enabled
    assert len(widget.table) == 0


def test_short_line_is_refused_with_a_message(pair, qtbot):
    viewer, near, far, widget = pair
    draw_lines(widget, near, far)
    widget.line_layer("near").add_lines(np.array([[100.0, 100.0], [140.0, 150.0]]))
    assert widget.run()
    _wait(qtbot, widget)
    assert "near-focus line is 64.0 px long" in widget.status.value
    assert widget.result is None


def test_table_edit_replace_export_import(pair, qtbot, tmp_path, monkeypatch):
    viewer, near, far, widget = pair
    widget.table.add(-100, 1.08, -3.5, intensity=42.5, spot=5, probe="micro")
    widget.refresh_table()
    draw_lines(widget, near, far)
    widget.run()
    _wait(qtbot, widget)
    widget.setting.defocus.value = -101.0  # nearly the same defocus and setting: replaces the row
    # the image records -150 µm: the typed value is questioned once, then kept
    assert widget.accept() is None and "records" in widget.status.value
    assert len(widget.table) == 1 and widget.table.frame.loc[0, "defocus_um"] == -100
    widget.accept()
    assert len(widget.table) == 1 and "replaced the calibration at -100 µm" in widget.status.value

    # an edit in the table changes the row; a bad edit is refused and restored
    table = widget.session.view.widget.native
    column = list(widget.table.frame.columns).index("defocus_um")
    table.item(0, column).setText("-120")
    assert widget.table.frame.loc[0, "defocus_um"] == -120
    qtbot.waitUntil(lambda: table.item(0, column).text() == "-120")
    table.item(0, column).setText("0")
    assert "non-zero" in widget.status.value
    assert widget.table.frame.loc[0, "defocus_um"] == -120
    qtbot.waitUntil(lambda: table.item(0, column).text() == "-120")

    path = tmp_path / "high_defocus.csv"
    widget.session.export_csv(path)
    widget.session.table = HighDefocusTable()
    widget.session.import_csv(path)
    assert len(widget.table) == 1 and widget.table.frame.loc[0, "defocus_um"] == -120
    bad = tmp_path / "bad.csv"
    bad.write_text("defocus_um,magnification\n-100,5000\n")
    widget.session.import_csv(bad)
    assert "unknown column(s) magnification" in widget.status.value
    assert len(widget.table) == 1  # nothing lost

    # for SerialEM: the row's setting is known (spot, micro, intensity), but the sample's
    # layers come from no file: the sign of the rotation in SerialEM's axes is not known
    save_for = widget.session.export_buttons["Save for SerialEM…"]
    assert "HighFocusMagCal" in save_for.tooltip
    widget.session.save_for(SERIALEM_HIGH_DEFOCUS, tmp_path / "cal.txt")
    assert "not an MRC or TIFF file SerialEM wrote" in widget.status.value
    assert not (tmp_path / "cal.txt").exists()
    widget.table.update(0, near_image="near.mrc", far_image="far.mrc")
    widget.session.save_for(SERIALEM_HIGH_DEFOCUS, tmp_path / "cal.txt")
    assert "1 HighFocusMagCal line(s)" in widget.status.value
    line = (tmp_path / "cal.txt").read_text().split()
    assert line[:4] == ["HighFocusMagCal", "5", "1", "-120.000000"]
    # the button asks for a text file, then writes it
    from qtpy.QtWidgets import QFileDialog

    asked = []

    def answer(parent, title, default, filters):
        asked.append((default, filters))
        return str(tmp_path / "chosen.txt"), filters

    monkeypatch.setattr(QFileDialog, "getSaveFileName", answer)
    save_for.native.click()
    assert asked == [("high_focus_mag_cal.txt", "Text (*.txt)")]
    assert (tmp_path / "chosen.txt").read_text().startswith("HighFocusMagCal 5 1")
    widget.session.table = HighDefocusTable()
    widget.session.save_for(SERIALEM_HIGH_DEFOCUS, tmp_path / "none.txt")
    assert "empty" in widget.status.value and not (tmp_path / "none.txt").exists()


def test_menu_action_docks_with_the_selected_pair(make_napari_viewer):
    from napari_emcal._napari.contributions import measure_high_defocus

    viewer = make_napari_viewer()
    viewer.open_sample("napari-emcal", "high_defocus_pair")
    near, far = viewer.layers[0], viewer.layers[1]
    viewer.layers.selection = {far, near}
    widget = measure_high_defocus(viewer)
    assert widget.near.value is near and widget.far.value is far


def test_a_line_layer_made_by_hand_is_used(pair):
    viewer, near, far, widget = pair
    viewer.add_shapes(
        np.array([[[100.0, 100.0], [100.0, 400.0]]]), shape_type="line", name=f"{near.name} · line"
    )
    assert widget.line("near") == pytest.approx(np.array([[100.0, 100.0], [100.0, 400.0]]))
    widget.line_layer("near").add_lines(np.array([[50.0, 50.0], [450.0, 50.0]]))
    assert "near 400 px" in widget.lines_label.value
