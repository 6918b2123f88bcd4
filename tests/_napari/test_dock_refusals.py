"""Bad input through each dock (issue 38): a visible message in the dock's status line
(and a napari notification), never a traceback, and the dock keeps what it had. The
hostile files come from ``tests/hostile_files.py``."""

import numpy as np
import pytest

from tests import hostile_files as hostile

pytestmark = pytest.mark.gui


def _dock(viewer, name):
    _, widget = viewer.window.add_plugin_dock_widget("napari-emcal", name)
    return widget


def _refused(widget, *expected):
    """The status line shows a refusal naming each of ``expected``, and no traceback."""
    text = widget.status.value
    assert text.startswith("⚠"), text
    assert "Traceback" not in text and "please report" not in text, text
    for part in expected:
        assert part in text, text


def test_overfocus_dock_refuses_hostile_twin_files(make_napari_viewer, tmp_path):
    widget = _dock(make_napari_viewer(), "Overfocus calibration")
    before = widget.params()
    for path, expected in (
        (hostile.json_deeply_nested(tmp_path), "nested too deeply"),
        (hostile.json_huge_integer(tmp_path), "digits long"),
        ("/dev/zero", "device"),
        (hostile.fifo(tmp_path), "FIFO"),
    ):
        widget.actions.load(path)
        _refused(widget, "Could not load", expected)
    assert widget.params() == before


def test_dataset_check_dock_refuses_data_outside_the_folder(
    make_napari_viewer, qtbot, tmp_path, monkeypatch
):
    """Another dataset of the layer's HDF5 file whose frames lie in another folder is
    refused in the dock; with that folder named in the settings it opens."""
    import h5py

    from napari_emcal.settings import save_setting

    monkeypatch.setenv("NAPARI_EMCAL_SETTINGS", str(tmp_path / "settings.json"))
    folder = tmp_path / "dataset"
    folder.mkdir()
    raw = hostile.outside_file(folder)
    path = folder / "two.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("frames", data=np.ones((8, 8, 8, 8), np.float32))
        f.create_dataset(
            "elsewhere", shape=(4, 4, 8, 8), dtype="<f4", external=[(str(raw), 0, 4096)]
        )
    viewer = make_napari_viewer()
    (layer,) = viewer.open(str(path), plugin="napari-emcal")
    widget = _dock(viewer, "4D dataset check")
    widget.set_layer(layer)
    assert set(widget.source.dataset.choices) >= {"frames", "elsewhere"}
    widget.source.dataset.value = "elsewhere"
    _refused(widget, "outside the dataset's folder", "data_folders")
    assert layer.data.shape == (8, 8, 8, 8)  # the layer keeps its data
    widget.source._reshape("4 by 2")
    _refused(widget, "Scan shape")
    save_setting("data_folders", [str(raw.parent)])
    widget.source.dataset.value = "frames"
    widget.source.dataset.value = "elsewhere"
    assert layer.data.shape == (4, 4, 8, 8)
    np.testing.assert_array_equal(np.asarray(layer.data).ravel(), np.fromfile(raw, np.float32))


@pytest.mark.parametrize(
    "dock", ["Grating pixel size", "High-defocus mag", "Camera length (rings)"]
)
def test_table_docks_refuse_hostile_table_files(make_napari_viewer, tmp_path, dock):
    widget = _dock(make_napari_viewer(), dock)
    rows = len(widget.table)
    formula = tmp_path / "formula.csv"
    formula.write_text("=cmd|' /C calc'!A0,@SUM(1)\n1,2\n")
    for path, expected in (
        ("/dev/urandom", "device"),
        (hostile.fifo(tmp_path), "FIFO"),
        (hostile.empty_file(tmp_path, "empty.csv"), ""),
        (formula, "unknown column"),
    ):
        widget.session.import_csv(path)
        _refused(widget, expected)
    assert len(widget.table) == rows


def test_high_defocus_dock_refuses_a_bad_calibration_kind(make_napari_viewer, tmp_path):
    widget = _dock(make_napari_viewer(), "High-defocus mag")
    path = tmp_path / "table.csv"
    path.write_text("calibration,defocus_um,scale,rotation_deg\n=1+2,-80,1.02,1.5\n")
    widget.session.import_csv(path)
    _refused(widget, "calibration must be 'magnification' or 'image shift'")
    assert len(widget.table) == 0


def test_dose_dock_refuses_hostile_files(make_napari_viewer, qtbot, tmp_path):
    widget = _dock(make_napari_viewer(), "Dose table")
    empty_mdoc = tmp_path / "empty.mdoc"
    empty_mdoc.write_text("PixelSpacing = 1\n")
    paths = [hostile.mrc_declaring(tmp_path), hostile.fifo(tmp_path), empty_mdoc]
    widget.add_files(paths)
    qtbot.waitUntil(lambda: "file(s) not added" in widget.status.value, timeout=30000)
    _refused(widget, "3 file(s) not added", "lying.mrc")
    assert len(widget.table) == 0


def test_serialem_dock_refuses_hostile_series(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    widget = _dock(viewer, "SerialEM calibrations")
    empty_mdoc = tmp_path / "empty.mrc.mdoc"
    empty_mdoc.write_text("PixelSpacing = 1\n")
    for path, expected in (
        (hostile.mrc_declaring(tmp_path), "lying.mrc"),
        ("/dev/zero", "device"),
        (hostile.fifo(tmp_path), "FIFO"),
        (empty_mdoc, "empty.mrc.mdoc"),
    ):
        assert not widget.open(path)
        _refused(widget, expected)
    assert widget.series is None and len(viewer.layers) == 0
