"""The npe2 reader for instrument images: every real 2D file opens with the pixel size
``emcal info`` reads, as scale and units (real files skip when absent)."""

import numpy as np
import pytest

from napari_emcal.cli.info import read_instrument
from napari_emcal.units import convert
from tests.conftest import real_file

#: Real 2D files and the pixel size in nm the data README lists (None: not recorded).
REAL_IMAGES = [
    ("images/tia_srtio3/16_STOimage_1.ser", 0.0100127, ["16_STOimage_1"]),
    ("images/tvips/TVIPS_bin4.tif", 1.4208, ["TVIPS_bin4"]),
    ("images/velox_emd/test_si_16x16_215kx.emd", 3.599, ["C", "Ca", "O", "Cu", "HAADF"]),
    ("images/velox_tem/fei_example_tem_stack.emd", 8.17e-3, ["Ceta"]),
    ("images/mrc_fei/HAADFscan.mrc", 5.679, ["HAADFscan"]),
    ("images/fei_helios/FEI-Helios-Ebeam-8bits.tif", 3372.4, ["FEI-Helios-Ebeam-8bits"]),
    ("images/dm/test_dm_image_um_unit.dm3", 168.675, ["test_dm_image_um_unit"]),
    ("images/dm/test_STEM_image.dm3", 0.2485, ["test_STEM_image"]),
    ("images/dm/Fei HAADF-UK_location.dm3", 5.506, ["Fei HAADF-UK_location"]),
    ("images/atomap_srtio3_110/test_ADF_cropped.hdf5", None, ["test_ADF_cropped"]),
]


@pytest.mark.parametrize(("relative", "pixel_nm", "names"), REAL_IMAGES)
def test_real_image_opens_with_the_pixel_size_emcal_info_reads(
    make_napari_viewer, relative, pixel_nm, names
):
    path = real_file(relative)
    inst, kind = read_instrument(path)
    assert kind == "2D image"
    viewer = make_napari_viewer()
    layers = viewer.open(str(path), plugin="napari-emcal")
    assert [layer.name for layer in layers] == names
    for layer in layers:
        units = [f"{u:~}" for u in layer.units[-2:]]
        emcal = layer.metadata["emcal"]
        assert emcal["source"] == str(path)
        if pixel_nm is None:
            assert "pixel_size" not in inst
            assert units == ["pixel", "pixel"] and list(layer.scale[-2:]) == [1.0, 1.0]
            assert any("pixels" in note for note in emcal["notes"])  # said, not silent
            continue
        info_nm = convert(inst.value("pixel_size")[-1], "m", "nm")
        assert units == ["nm", "nm"]
        np.testing.assert_allclose(layer.scale[-2:], [info_nm, info_nm], rtol=1e-9)
        assert info_nm == pytest.approx(pixel_nm, rel=2e-3)  # and the README's value
        # the same InstrumentMetadata JSON as `emcal info`, in the layout the docks read
        assert emcal["instrument"]["values"]["pixel_size"]["source"] == inst.source("pixel_size")
        assert emcal["pixel_size_nm"] == pytest.approx(info_nm)
        assert set(emcal["instrument"]["values"]) == set(inst)


def test_real_stack_keeps_its_time_axis(make_napari_viewer):
    path = real_file("images/velox_tem/fei_example_tem_stack.emd")
    viewer = make_napari_viewer()
    (layer,) = viewer.open(str(path), plugin="napari-emcal")
    assert layer.data.shape == (2, 3, 3)
    assert layer.scale[0] == pytest.approx(0.8)  # s per frame
    assert f"{layer.units[0]:~}" == "s"


def test_real_images_open_without_a_units_warning(make_napari_viewer):
    viewer = make_napari_viewer()
    with _no_units_warning():
        viewer.open(str(real_file("images/tvips/TVIPS_bin4.tif")), plugin="napari-emcal")
        viewer.open(str(real_file("images/dm/test_dm_image_um_unit.dm3")), plugin="napari-emcal")


def _no_units_warning():
    from contextlib import contextmanager
    from unittest import mock

    @contextmanager
    def watch():
        import napari._vispy.canvas as canvas

        with mock.patch.object(canvas, "show_warning") as shown:
            yield
            from qtpy.QtWidgets import QApplication

            QApplication.processEvents()
        messages = [str(c.args[0]) for c in shown.call_args_list]
        assert not [m for m in messages if "Inconsistent units" in m], messages

    return watch()


def test_reader_leaves_2d_npy_and_4d_files_to_their_readers(tmp_path):
    from napari_emcal._napari.contributions import get_reader, read_4d, read_images

    np.save(tmp_path / "image.npy", np.zeros((8, 8)))
    np.save(tmp_path / "scan.npy", np.zeros((2, 2, 8, 8)))
    assert get_reader(str(tmp_path / "image.npy")) is None  # napari opens it itself
    assert get_reader(str(tmp_path / "scan.npy")) is read_4d
    import h5py

    with h5py.File(tmp_path / "plain.h5", "w") as h5file:  # not HyperSpy's: not claimed
        h5file["image"] = np.zeros((8, 8))
    assert get_reader(str(tmp_path / "plain.h5")) is None
    import tifffile

    tifffile.imwrite(tmp_path / "a.tif", np.zeros((8, 8), np.uint8))
    assert get_reader(str(tmp_path / "a.tif")) is read_images


def test_large_files_open_lazily(tmp_path, monkeypatch):
    import dask.array as da
    import tifffile

    from napari_emcal.io import images

    tifffile.imwrite(tmp_path / "a.tif", np.arange(64, dtype=np.uint8).reshape(8, 8))
    monkeypatch.setattr(images, "LAZY_ABOVE_BYTES", 10)
    (signal,) = images.open_signals(tmp_path / "a.tif")
    assert isinstance(signal.data, da.Array)
    from napari_emcal._napari.contributions import read_images

    ((data, kwargs, _),) = read_images(str(tmp_path / "a.tif"))
    assert isinstance(data, da.Array) and len(kwargs["contrast_limits"]) == 2
    np.testing.assert_array_equal(signal.data.compute(), np.arange(64).reshape(8, 8))


def test_plain_tiff_with_resolution_tags_opens_in_nm(tmp_path):
    import tifffile

    from napari_emcal.io.images import open_signals

    # 2e5 pixels per cm: 50 nm per pixel
    tifffile.imwrite(
        tmp_path / "r.tif",
        np.zeros((8, 8), np.uint8),
        resolution=(2e5, 2e5),
        resolutionunit="CENTIMETER",
    )
    (signal,) = open_signals(tmp_path / "r.tif")
    assert signal.units == ("nm", "nm")
    np.testing.assert_allclose(signal.scale, [50.0, 50.0], rtol=1e-6)


def test_uncalibrated_tiff_opens_in_pixels_with_a_note(tmp_path):
    import tifffile

    from napari_emcal.io.images import open_signals

    tifffile.imwrite(tmp_path / "p.tif", np.zeros((8, 8), np.uint8))
    (signal,) = open_signals(tmp_path / "p.tif")
    assert signal.units == ("pixel", "pixel") and signal.scale == (1.0, 1.0)
    assert not signal.calibrated
    assert any("pixels" in note for note in signal.notes)


def test_diffraction_axes_in_reciprocal_nm_and_mrad():
    from napari_emcal.io.images import _other_axis

    assert _other_axis({"units": "1/Å", "scale": 0.01}) == pytest.approx((0.1, "1/nm"))
    assert _other_axis({"units": "nm^-1", "scale": 0.02}) == pytest.approx((0.02, "1/nm"))
    assert _other_axis({"units": "rad", "scale": 1e-4}) == pytest.approx((0.1, "mrad"))
    assert _other_axis({"units": None, "scale": 0.5}) is None


def test_mrc_stack_reads_the_mdoc_beside(tmp_path):
    import mrcfile

    from napari_emcal.io.images import open_signals

    with mrcfile.new(tmp_path / "tilt.st") as mrc:
        mrc.set_data(np.zeros((3, 8, 8), np.int16))  # no voxel size in the header
    (tmp_path / "tilt.st.mdoc").write_text(
        "PixelSpacing = 5.4\nVoltage = 300\nImageFile = tilt.st\nImageSize = 8 8\n"
        "DataMode = 1\n\n[ZValue = 0]\nTiltAngle = 0\nMagnification = 33000\n"
        "SpotSize = 8\nExposureTime = 0.8\nPixelSpacing = 5.4\nVoltage = 300\n"
    )
    (signal,) = open_signals(tmp_path / "tilt.st")
    assert signal.data.shape == (3, 8, 8)
    assert signal.units[-2:] == ("nm", "nm")
    np.testing.assert_allclose(signal.scale[-2:], [0.54, 0.54])
    values = signal.metadata["instrument"]["values"]
    assert values["pixel_size"]["source"].startswith("tilt.st.mdoc")
    assert values["beam_energy"]["value"] == pytest.approx(300e3)
    assert values["magnification"]["value"] == 33000


def test_berkeley_emd_microscope_group_is_read():
    from napari_emcal.io.instrument import from_original_metadata

    inst = from_original_metadata(
        {
            "microscope": {
                "high tension": "300 kV",
                "camera length (mm)": 160.0,
                "convergence angle": "25 mrad",
                "magnification": 910000,
                "spot": "bad",
            }
        },
        "scan.emd",
    )
    assert inst.value("beam_energy") == pytest.approx(300e3)
    assert inst.value("camera_length") == pytest.approx(0.160)
    assert inst.value("convergence_angle") == pytest.approx(0.025)
    assert inst.value("magnification") == 910000
    assert "spot" not in inst
    assert inst.source("camera_length") == "scan.emd: microscope.camera length (mm) (mm)"
    # a bare number whose unit cannot be told is refused, with a note
    bare = from_original_metadata({"microscope": {"camera length": 160}}, "scan.emd")
    assert "camera_length" not in bare
    assert any("no unit recorded" in note for note in bare.notes)


def test_layer_calibration_from_metadata_source_file_or_scale():
    from napari_emcal.io.images import layer_calibration

    path = real_file("images/tvips/TVIPS_bin4.tif")
    # a layer napari's own TIFF reader made: no metadata, but its source file
    found = layer_calibration({}, (1.0, 1.0), ("pixel", "pixel"), path, (1024, 1024))
    assert found.pixel_size_nm == pytest.approx(1.4208, rel=1e-3)
    assert found.source.startswith("TVIPS_bin4.tif")
    assert found.magnification == 32000
    # our reader's metadata
    again = layer_calibration({"emcal": found.metadata}, None, None)
    assert again.pixel_size_nm == pytest.approx(found.pixel_size_nm)
    assert again.source == found.source
    # scale and units only (napari-rosettasciio, a scale typed by hand)
    scaled = layer_calibration({}, (0.5, 0.5), ("µm", "µm"))
    assert scaled.pixel_size_nm == pytest.approx(500.0)
    assert "layer's scale" in scaled.source
    # nothing
    none = layer_calibration({}, (1.0, 1.0), ("pixel", "pixel"))
    assert none.pixel_size_nm is None and none.source == "none recorded"


def test_tiff_print_resolution_is_not_a_pixel_size(tmp_path):
    import tifffile

    from napari_emcal.io.images import open_signals

    tifffile.imwrite(
        tmp_path / "doc.tif", np.zeros((8, 8), np.uint8), resolution=(72, 72), resolutionunit=2
    )
    (signal,) = open_signals(tmp_path / "doc.tif")
    assert signal.units == ("pixel", "pixel")
    assert any("print or screen resolution" in note for note in signal.notes)


def test_docks_take_the_calibration_of_a_layer_napari_opened(make_napari_viewer):
    """A TVIPS TIFF opened by napari's own reader (no metadata, scale 1): the grating and
    dose docks read its calibration from the source file, and say so."""
    path = real_file("images/tvips/TVIPS_bin4.tif")
    viewer = make_napari_viewer()
    (layer,) = viewer.open(str(path), plugin="napari")
    assert "emcal" not in layer.metadata and list(layer.scale) == [1.0, 1.0]
    _, grating = viewer.window.add_plugin_dock_widget("napari-emcal", "Grating pixel size")
    grating.layer.value = layer
    assert grating.magnification.value == 32000
    assert "TVIPS_bin4.tif: TVIPS.TemMagnification" in grating.magnification.tooltip
    _, dose = viewer.window.add_plugin_dock_widget("napari-emcal", "Dose table")
    assert dose.add_layers([layer]) == 1
    row = dose.table.frame.iloc[-1]
    assert row.voltage_kv == pytest.approx(99.0)
    assert row.pixel_size_nm == pytest.approx(1.4208, rel=1e-3)
