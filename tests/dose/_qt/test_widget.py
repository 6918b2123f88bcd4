"""The "Dose table" widget with a real viewer: rows from layers, edits, budget, autosave."""

import json
import socket

import numpy as np
import pandas as pd
import pytest

from napari_emcal.dose import DoseTable
from napari_emcal.dose.autosave import Autosave

pytestmark = pytest.mark.gui


@pytest.fixture
def series(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-emcal", "in_situ_series")
    _, widget = viewer.window.add_plugin_dock_widget("napari-emcal", "Dose table")
    return viewer, viewer.layers[0], widget


def test_add_layer_fills_the_table_from_metadata(series):
    viewer, layer, widget = series
    viewer.layers.selection = {layer}
    assert widget.add_layers() == 8  # one row per frame of the stack
    frame = widget.table.frame
    assert len(frame) == 8 and (frame.problems == "").all()
    assert len(widget.table.calibration) == 3  # the sample's Faraday-cup currents
    # spot 5 (1200 pA) then spot 7 (300 pA) over a 2 µm beam; the exposure doubles at the end
    flux_spot5 = 1.2e-9 / 1.602176634e-19 / (np.pi * 1e4**2)
    assert frame.flux_e_A2_s.iloc[0] == pytest.approx(flux_spot5, rel=1e-6)
    assert frame.flux_e_A2_s.iloc[-1] == pytest.approx(flux_spot5 / 4, rel=1e-6)
    assert frame.dose_e_A2.iloc[-1] == pytest.approx(flux_spot5 / 2, rel=1e-6)
    assert frame.cumulative_e_A2.iloc[-1] == pytest.approx(frame.dose_e_A2.sum(), rel=1e-9)
    # over the 50 e/Å² budget from the third image: highlighted and named in the summary
    assert list(frame.over_budget) == [False, False] + [True] * 6
    view = widget.images_view.native
    assert view.rowCount() == 8
    assert (
        view.item(2, 0).background().color().name() != view.item(0, 1).background().color().name()
    )
    assert "budget 50 e⁻/Å² exceeded from in situ series (simulated) [2]" in widget.summary.value
    assert len(widget.plot.dose_axes.lines) >= 1


def test_accumulation_mode_and_budget(series):
    viewer, layer, widget = series
    widget.add_layers([layer])
    exposure_total = widget.table.frame.cumulative_e_A2.iloc[-1]
    widget.accumulation.value = "wall_clock"
    wall_clock_total = widget.table.frame.cumulative_e_A2.iloc[-1]
    assert wall_clock_total > 30 * exposure_total  # the beam stays on between images
    widget.budget.value = 0.0
    assert not widget.table.frame.over_budget.any() and widget.table.budget is None


def test_edits_and_flags(series, qtbot):
    viewer, layer, widget = series
    widget.add_layers([layer])
    widget.images_view.set_cell_text(0, "current_pa", "-5")
    row = widget.table.frame.iloc[0]
    assert "negative current" in row.problems
    qtbot.waitUntil(lambda: "negative current" in widget.images_view.cell_text(0, "problems"))
    assert "1 row(s) need attention" in widget.summary.value
    widget.images_view.set_cell_text(0, "current_pa", "lots")
    assert "must be a number" in widget.status.value
    widget.images_view.set_cell_text(0, "flux_e_A2_s", "3")
    assert "is computed" in widget.status.value
    widget.images_view.set_cell_text(0, "current_pa", "")  # back to the calibration
    qtbot.waitUntil(lambda: widget.images_view.cell_text(0, "problems") == "")


def test_current_calibration_editing(series):
    viewer, layer, widget = series
    widget.add_layers([layer])
    widget.currents.voltage.value, widget.currents.spot.value, widget.currents.aperture.value = (
        300,
        6,
        70,
    )
    widget.currents.probe.value, widget.currents.current.value = "micro", 999.0
    widget.currents.add()  # a second spot 6 reading joins the first
    assert len(widget.table.calibration) == 4
    # kept in the history at its setting: a second reading there 10 % lower is drift
    assert "the first at this setting" in widget.status.value
    widget.currents.current.value = 899.0
    widget.currents.add()
    assert "previous" in widget.status.value and "current_pa 999" in widget.status.value
    from napari_emcal.history import History

    entries = History().entries("current", setting=widget.currents.setting())
    assert [e.values["current_pa"] for e in entries] == [999.0, 899.0]
    assert widget.currents.setting() == "voltage_kv=300, spot=6, aperture_um=70, probe=micro"
    widget.currents.history.shown.value = True
    assert widget.currents.history.points()[1] == [999.0, 899.0]
    widget.currents.current.value = 0.0
    widget.currents.add()
    assert "current must be positive" in widget.status.value


def test_autosave_after_every_change_and_restore(make_napari_viewer, series, qtbot):
    viewer, layer, widget = series
    widget.add_layers([layer])
    widget.images_view.set_cell_text(0, "image", "first frame")
    qtbot.waitUntil(lambda: "first frame" in widget.autosave.path.read_text())
    saved = widget.autosave.load()
    assert len(saved) == 8 and len(saved.calibration) == 3
    # a second window while the first is open: its own file, nothing offered
    other = make_napari_viewer()
    _, second = other.window.add_plugin_dock_widget("napari-emcal", "Dose table")
    assert not second.restore_offer.pending and second.autosave.path != widget.autosave.path

    # the first window crashes (its lock stays, held by a process that no longer exists)
    lock = widget.autosave.lock_path
    lock.write_text(json.dumps({"pid": 999999999, "host": socket.gethostname()}))
    widget.autosave._locked = False
    third = make_napari_viewer()
    _, restarted = third.window.add_plugin_dock_widget("napari-emcal", "Dose table")
    assert restarted.restore_offer.pending
    assert "8 image(s), 3 current(s)" in restarted.restore_offer.choice.current_choice
    restarted.restore_offer.restore()
    assert len(restarted.table) == 8
    assert restarted.table.frame.image.iloc[0] == "first frame"
    assert restarted.autosave.path == widget.autosave.path  # continues in the same file


def test_two_windows_never_overwrite_each_other(make_napari_viewer):
    first_viewer, second_viewer = make_napari_viewer(), make_napari_viewer()
    _, first = first_viewer.window.add_plugin_dock_widget("napari-emcal", "Dose table")
    _, second = second_viewer.window.add_plugin_dock_widget("napari-emcal", "Dose table")
    for viewer, widget, n in ((first_viewer, first, 2), (second_viewer, second, 3)):
        for i in range(n):
            layer = viewer.add_image(
                np.zeros((8, 8)), name=f"img{i}", metadata={"emcal": {"mode": "TEM"}}
            )
            widget.add_layers([layer])
    assert len(Autosave(first.autosave.path).load()) == 2
    assert len(Autosave(second.autosave.path).load()) == 3


def test_changes_before_choosing_keep_the_old_table(make_napari_viewer, tmp_path):
    Autosave().save(_two_rows())  # the single file of earlier versions
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-emcal", "Dose table")
    assert widget.restore_offer.pending
    viewer.add_image(np.zeros((16, 16)), name="new", metadata={"emcal": {"mode": "TEM"}})
    widget.add_layers([viewer.layers["new"]])
    assert len(widget.autosave.load()) == 1  # the new table, in its own file
    assert len(Autosave().load()) == 2  # the old one, untouched


def test_start_fresh_sets_the_old_aside(make_napari_viewer):
    Autosave().save(_two_rows())
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-emcal", "Dose table")
    widget.restore_offer.start_fresh()
    assert len(widget.table) == 0 and not widget.restore_offer.restore_button.visible
    aside = Autosave().path.parent / "set_aside" / Autosave().path.name
    assert len(Autosave(aside).load()) == 2
    _, again = make_napari_viewer().window.add_plugin_dock_widget("napari-emcal", "Dose table")
    assert not again.restore_offer.pending  # not offered again


def test_a_damaged_autosave_opens_with_what_can_be_read(make_napari_viewer):
    document = json.loads(_two_rows().to_json())
    del document["accumulation"]
    document["budget"] = "abc"
    Autosave().path.parent.mkdir(parents=True, exist_ok=True)
    Autosave().path.write_text(json.dumps(document))
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-emcal", "Dose table")
    assert widget.restore_offer.pending
    assert "damaged" in widget.restore_offer.choice.current_choice
    widget.restore_offer.restore()
    assert len(widget.table) == 2
    assert "accumulation" in widget.status.value and "budget" in widget.status.value
    assert Autosave().backup_path.is_file()  # the file as it was


def test_exports_and_import(series, tmp_path, qtbot):
    viewer, layer, widget = series
    widget.add_layers([layer])
    widget.files.export_csv(tmp_path / "dose.csv")
    widget.files.export_excel(tmp_path / "dose.xlsx")
    back = DoseTable.from_excel(tmp_path / "dose.xlsx")
    pd.testing.assert_frame_equal(back.rows, widget.table.rows)
    from napari_emcal.dose.export import dose_columns

    widget.files.export_dose_text(tmp_path / "dose.txt")  # the same as emcal dose --dose-text
    lines = [line for line in (tmp_path / "dose.txt").read_text().splitlines() if line[0] != "#"]
    names, prior, dose = dose_columns(widget.table)
    assert [float(v) for v in lines[-1].split()[:2]] == pytest.approx(
        [prior[-1], dose[-1]], abs=1e-4
    )
    assert "per image written" in widget.status.value

    def imported(path):
        assert widget.files.import_csv(path) is not None  # read in a worker
        qtbot.waitUntil(lambda: not widget.busy, timeout=30000)

    imported(tmp_path / "dose.csv")
    assert len(widget.table) == 16
    partial = tmp_path / "partial.csv"
    partial.write_text("image,current_pa\nextra,5\n")
    imported(partial)
    assert len(widget.table) == 17 and "no column(s) time" in widget.status.value
    bad = tmp_path / "bad.csv"
    bad.write_text("image,colour\nx,red\n")
    imported(bad)
    assert "unknown column(s) colour" in widget.status.value and len(widget.table) == 17


def test_add_files_reads_in_a_worker(series, tmp_path, qtbot):
    viewer, layer, widget = series
    good = tmp_path / "frame.npy"
    np.save(good, np.zeros((8, 8), np.float32))
    empty = tmp_path / "empty.npy"
    empty.write_bytes(b"")
    worker = widget.add_files([good, empty])
    assert worker is not None and widget.busy
    assert widget.add_files([good]) is None  # one read at a time, said so
    assert "still reading" in widget.status.value
    qtbot.waitUntil(lambda: not widget.busy, timeout=30000)
    assert len(widget.table) == 1
    assert "1 file(s) not added" in widget.status.value and "empty.npy" in widget.status.value


def test_menu_action_adds_the_selected_layers(make_napari_viewer):
    from napari_emcal._napari.contributions import add_to_dose_table

    viewer = make_napari_viewer()
    viewer.open_sample("napari-emcal", "in_situ_series")
    viewer.layers.selection = {viewer.layers[0]}
    widget = add_to_dose_table(viewer)
    assert len(widget.table) == 8


def _two_rows():
    table = DoseTable()
    table.add(
        image="old 1",
        time="2026-11-19T10:00:00",
        mode="TEM",
        current_pa=10,
        illuminated_diameter_um=1,
        exposure_s=1,
    )
    table.add(
        image="old 2",
        time="2026-11-19T10:01:00",
        mode="TEM",
        current_pa=10,
        illuminated_diameter_um=1,
        exposure_s=1,
    )
    return table
