"""What files record about the instrument: values in SI units with their sources, on the
real instrument files (skipped where absent) and on files the tests write."""

import json
import subprocess
import sys

import h5py
import numpy as np
import pytest

from napari_emcal.cli import main
from napari_emcal.cli.info import read_instrument
from napari_emcal.dataset_check.report import check_dataset
from napari_emcal.dose.metadata import rows_from_file, serialem_time
from napari_emcal.errors import InvalidDataError
from napari_emcal.io.images import open_image
from napari_emcal.io.instrument import InstrumentMetadata, merlin_header
from napari_emcal.io.readers import holds_4d, open_4d
from napari_emcal.units import unit_of
from tests.conftest import real_file


def values(path):
    inst, _ = read_instrument(path)
    return inst


# -- 4D files -------------------------------------------------------------------------
def test_generic_hdf5_scan_step_camera_length_and_high_tension():
    inst = values(real_file("4d/fpd_hdf5/FPD_HDF5.hdf5"))
    assert inst.value("scan_step") == pytest.approx((5.4826e-9, 5.4826e-9), rel=1e-4)
    assert "dim1" in inst.source("scan_step")
    assert inst.value("camera_length") == pytest.approx(0.6)
    assert "Camera length_m" in inst.source("camera_length")
    assert inst.value("beam_energy") == pytest.approx(200e3)
    assert inst.value("saturation_count") == 4095  # the Merlin header kept in the file
    ds = open_4d(real_file("4d/fpd_hdf5/FPD_HDF5.hdf5"))
    assert ds.metadata["camera_length"] == pytest.approx(0.6)  # the tools see them too
    assert ds.metadata["scan_step"] == pytest.approx([5.4826e-9] * 2, rel=1e-4)


def test_hdf5_axes_written_by_the_test(tmp_path):
    path = tmp_path / "scan.h5"
    with h5py.File(path, "w") as f:
        group = f.create_group("experiment/signal")
        group["data"] = np.zeros((4, 6, 8, 8), np.uint16)
        group["dim1"] = np.arange(4) * 2.5
        group["dim1"].attrs["units"] = "nm"
        group["dim2"] = np.arange(6) * 2.5
        group["dim2"].attrs["units"] = "n_m"  # Berkeley EMD spelling
        f["experiment/tags/High tension_kV"] = 300.0
    inst = values(path)
    assert inst.value("scan_step") == pytest.approx((2.5e-9, 2.5e-9))
    assert inst.value("beam_energy") == pytest.approx(300e3)
    assert "High tension_kV" in inst.source("beam_energy")
    assert "camera_length" not in inst  # not in the file: absent, never a default


def test_merlin_counter_depth_gives_the_saturation_count():
    inst = values(real_file("4d/merlin_4x2/001_4x2_6bit.mib"))
    assert inst.value("saturation_count") == 63
    assert "Counter Depth" in inst.source("saturation_count")
    assert inst.source("scan_shape").startswith("guessed")
    dataset = open_4d(real_file("4d/merlin_4x2/001_4x2_6bit.mib"))
    _, report = check_dataset(dataset.data, dataset.metadata)  # no max_count given
    assert report.saturated_fraction == pytest.approx(0.03, abs=0.01)
    assert report.saturation_count == 63 and "Counter Depth" in report.saturation_source


def test_merlin_scan_shape_written_in_the_header():
    inst = values(
        real_file("4d/merlin_no_beam/003_merlin_test_roi_sig256x64_nav4x2_hot_pixel_52x_39y.hdr")
    )
    assert inst.value("scan_shape") == (2, 4) and "ScanY, ScanX" in inst.source("scan_shape")
    assert inst.value("saturation_count") == 4095


def test_merlin_header_text():
    header = merlin_header(
        "HDR,\nCounter Depth (number):\t12\nScanX:\t8\nScanY:\t3\n"
        "Frames in Acquisition (Number):\t24\nEnd",
        "x.hdr",
    )
    assert header.value("saturation_count") == 4095 and header.value("scan_shape") == (3, 8)
    assert header.frames_announced == 24


def test_merlin_file_that_does_not_match_its_header(tmp_path):
    src = real_file("4d/merlin_4x2/001_4x2_6bit.mib")
    raw, hdr = src.read_bytes(), src.with_suffix(".hdr").read_text()
    frame = len(raw) // 8
    (tmp_path / "mid.mib").write_bytes(raw[: 5 * frame + frame // 2])  # cut in a frame
    (tmp_path / "mid.hdr").write_text(hdr)
    with pytest.raises(InvalidDataError, match="truncated|middle of a frame"):
        open_4d(tmp_path / "mid.mib")
    (tmp_path / "other.mib").write_bytes(raw)
    (tmp_path / "other.hdr").write_text(
        hdr.replace("Acquisition (Number):\t8", "Acquisition (Number):\t6")
    )
    with pytest.raises(InvalidDataError, match="announces 6"):
        open_4d(tmp_path / "other.mib")


# -- 2D images ----------------------------------------------------------------------------
def test_tvips_magnification_and_high_tension_from_the_right_fields():
    inst = values(real_file("images/tvips/TVIPS_bin4.tif"))
    assert inst.value("magnification") == 32000 and "TemMagnification" in inst.source(
        "magnification"
    )
    assert inst.value("beam_energy") == pytest.approx(99e3)
    assert inst.value("exposure_time") == pytest.approx(0.4)


def test_tia_values_come_from_the_emi():
    inst = values(real_file("images/tia_srtio3/16_STOimage_1.ser"))
    assert inst.value("pixel_size") == pytest.approx((0.0100127e-9,) * 2, rel=1e-5)
    assert inst.value("magnification") == pytest.approx(13.5e6)
    assert inst.value("beam_energy") == pytest.approx(80e3)
    assert inst.value("dwell_time") == pytest.approx(29e-6)
    assert inst.value("mode") == "STEM" and ".emi" in inst.source("mode")


def test_digitalmicrograph_2d_images_for_the_dose_table(capsys):
    path = real_file("images/dm/test_STEM_image.dm3")
    (row,) = rows_from_file(path)
    assert row["mode"] == "STEM" and row["voltage_kv"] == 200
    assert row["magnification"] == 225000 and row["dwell_us"] == pytest.approx(3.5)
    assert row["pixel_size_nm"] == pytest.approx(0.2485, abs=1e-4)
    assert main(["dose", str(path)]) == 0  # used to be refused as "not 4D"
    assert "test_STEM_image" in capsys.readouterr().out
    image, metadata = open_image(real_file("images/dm/Fei HAADF-UK_location.dm3"))
    assert metadata["pixel_size_nm"] == pytest.approx(5.506, abs=1e-3)  # µm in the file


def test_hyperspy_files_open_with_their_axes(tmp_path):
    from rsciio.hspy import file_writer

    axes = [
        {"name": n, "size": s, "scale": 0.25, "offset": 0.0, "units": "nm", "navigate": False}
        for n, s in (("y", 40), ("x", 50))
    ]
    signal = {
        "data": np.ones((40, 50), np.float32),
        "axes": axes,
        "metadata": {"General": {"title": "t"}, "Signal": {"signal_type": ""}},
        "original_metadata": {},
        # what HyperSpy itself hands RosettaSciIO's writer besides the data
        "tmp_parameters": {},
        "attributes": {"_lazy": False},
        "package_info": {"name": "rsciio", "version": "0"},
        "learning_results": {},
        "models": {},
    }
    file_writer(str(tmp_path / "image.hspy"), signal)
    image, metadata = open_image(tmp_path / "image.hspy")
    assert image.shape == (40, 50) and metadata["pixel_size_nm"] == pytest.approx(0.25)
    # a HyperSpy file whose axes have a scale but no unit: said, and not used
    image, metadata = open_image(real_file("images/atomap_srtio3_110/test_ADF_cropped.hdf5"))
    assert image.shape == (400, 380) and "pixel_size_nm" not in metadata
    assert any("no length unit" in n for n in metadata["instrument"]["notes"])


def test_velox_tem_image_is_tem_and_has_no_stem_frame_time():
    (row,) = rows_from_file(real_file("images/velox_tem/fei_example_tem_stack.emd"))
    assert row["mode"] == "TEM" and row["exposure_s"] == pytest.approx(0.8)
    assert "frame_time_s" not in row and "dwell_us" not in row
    assert row["current_pa"] == pytest.approx(3732.3, abs=0.1) and row["spot"] == 3
    assert row["pixel_size_nm"] == pytest.approx(0.00817, abs=1e-5)


def test_fei_sem_tiff_current_in_amperes():
    inst = values(real_file("images/fei_helios/FEI-Helios-Ebeam-8bits.tif"))
    assert inst.value("beam_current") == pytest.approx(6.25e-12)
    assert inst.value("beam_energy") == pytest.approx(5000)
    (row,) = rows_from_file(real_file("images/fei_helios/FEI-Helios-Ebeam-8bits.tif"))
    assert row["current_pa"] == pytest.approx(6.25)  # not 6.25e-9 pA


def test_mrc_extended_header_values():
    inst = values(real_file("images/mrc_fei/HAADFscan.mrc"))
    assert inst.value("beam_energy") == pytest.approx(300e3) and inst.value("spot") == 6
    assert inst.value("dwell_time") == pytest.approx(0.01)
    assert inst.value("frame_time") == pytest.approx(2.72)
    assert inst.value("acquisition_time") == "2022-12-05T12:13:07"


# -- SerialEM -------------------------------------------------------------------------------
def test_mdoc_recorded_dose_and_frame_set_pixel_spacing():
    from napari_emcal.dose import DoseTable

    (row,) = rows_from_file(real_file("images/serialem_mdoc/frame_set_single.mdoc"))
    assert row["recorded_dose_e_A2"] == pytest.approx(7.65892)
    assert row["pixel_size_nm"] == pytest.approx(0.12827)
    table = DoseTable()
    table.add(**row)
    frame = table.frame
    assert frame.loc[0, "dose_e_A2"] == pytest.approx(7.65892)
    assert frame.loc[0, "dose_from"] == "recorded in the file"
    assert frame.loc[0, "problems"] == ""


def test_mdoc_exposure_dose_zero_is_not_a_dose_and_divided_by_2_doubles_counts():
    rows = rows_from_file(real_file("images/serialem_mdoc/montage_section.mdoc"))
    assert len(rows) == 63 and all("recorded_dose_e_A2" not in r for r in rows)
    # MinMaxMean's mean 2.48245 counts over 1.00134 s, halved by SerialEM (DividedBy2 = 1)
    assert rows[0]["counts_per_pixel_per_s"] == pytest.approx(2 * 2.48245 / 1.00134)
    assert rows[0]["pixel_size_nm"] == pytest.approx(65.6139)


def test_prior_record_dose_counts_before_the_image():
    from napari_emcal.dose import DoseTable

    table = DoseTable()
    table.add(image="a", time="2026-01-01T10:00:00", recorded_dose_e_A2=2.0, mode="TEM")
    table.add(
        image="b",
        time="2026-01-01T10:01:00",
        recorded_dose_e_A2=2.0,
        prior_dose_e_A2=0.5,
        mode="TEM",
    )
    assert list(table.frame["cumulative_e_A2"]) == pytest.approx([2.0, 4.5])


@pytest.mark.parametrize(
    "text, iso",
    [
        ("08-Oct-21  07:39:08", "2021-10-08T07:39:08"),
        ("08-Oct-2021 07:39:08", "2021-10-08T07:39:08"),
        ("2021-10-08T07:39:08", "2021-10-08T07:39:08"),
    ],
)
def test_serialem_dates(text, iso):
    assert serialem_time(text) == iso


def test_units_as_files_write_them():
    assert unit_of("n_m") == "nm" and unit_of("µm") == "µm" and unit_of("pixels") is None


# -- emcal info -------------------------------------------------------------------------------
def test_emcal_info_json(tmp_path, capsys):
    out = tmp_path / "info.json"
    assert main(["info", str(real_file("4d/fpd_hdf5/FPD_HDF5.hdf5")), "--json", str(out)]) == 0
    document = json.loads(out.read_text())
    assert document["values"]["camera_length"] == {
        "value": pytest.approx(0.6),
        "unit": "m",
        "source": document["values"]["camera_length"]["source"],
    }
    assert document["values"]["beam_energy"]["unit"] == "eV"
    assert "detector_pixel_size" not in document["values"]  # not in the file
    text = capsys.readouterr().out
    assert "Camera length_m" in text and "600 mm" in text


def test_emcal_info_on_a_file_without_calibration(tmp_path, capsys):
    np.save(tmp_path / "d.npy", np.zeros((2, 3, 4, 4), np.uint8))
    assert main(["info", str(tmp_path / "d.npy")]) == 0
    out = capsys.readouterr().out
    assert "scan_shape" in out and "camera_length" not in out
    assert main(["info", str(tmp_path / "absent.npy")]) == 2


def test_instrument_json_round_trip():
    inst = InstrumentMetadata("x.emd")
    inst.set_from_file("beam_current", 2e-10, "Optics.LastMeasuredScreenCurrent")
    inst.set("scan_shape", (3, 4), "typed by the user")
    back = InstrumentMetadata.from_json(json.loads(json.dumps(inst.to_json())))
    assert back.value("scan_shape") == (3, 4) and back.source("beam_current").startswith("x.emd")


# -- opening stays lazy; the reader claims only 3D/4D data ------------------------------------
def test_opening_a_large_npy_reads_no_pixel_data(tmp_path):
    """A 400 MB file: open_4d's resident memory grows by far less than the file."""
    path = tmp_path / "big.npy"
    big = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint16, shape=(64, 64, 128, 384))
    big[:] = 7  # pages on disk, not sparse: reading them would show
    big.flush()
    del big
    code = (
        "import resource, sys\n"
        "from napari_emcal.io.readers import open_4d\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "ds = open_4d(sys.argv[1])\n"
        "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print((after - before) / 1024)\n"
    )
    grown_mb = float(
        subprocess.run(
            [sys.executable, "-c", code, str(path)], check=True, capture_output=True, text=True
        ).stdout.split()[-1]
    )
    assert grown_mb < 60, f"open_4d grew resident memory by {grown_mb:.0f} MB (file: 400 MB)"


def test_reader_claims_only_3d_and_4d_data(tmp_path):
    from napari_emcal._napari.contributions import get_reader

    np.save(tmp_path / "image.npy", np.zeros((32, 32)))
    np.save(tmp_path / "scan.npy", np.zeros((2, 2, 8, 8)))
    with h5py.File(tmp_path / "images.h5", "w") as f:
        f["image"] = np.zeros((32, 32))
    assert get_reader(str(tmp_path / "image.npy")) is None
    assert get_reader(str(tmp_path / "images.h5")) is None
    assert get_reader(str(tmp_path / "scan.npy")) is not None
    assert holds_4d(tmp_path / "scan.npy") and not holds_4d(tmp_path / "image.npy")
