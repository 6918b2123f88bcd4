"""Dose-table rows from real instrument files and this project's own metadata."""

import numpy as np
import pytest

from napari_emcal.dose import DoseTable, stem_probe_dose
from napari_emcal.dose.metadata import row_from_metadata, rows_from_file, rows_from_layer
from napari_emcal.errors import InvalidDataError
from tests.conftest import real_file


def test_velox_emd_gives_a_stem_probe_dose():
    path = real_file("images/velox_emd/test_si_16x16_215kx.emd")
    (row,) = rows_from_file(path)
    assert row["mode"] == "STEM" and row["voltage_kv"] == 300 and row["spot"] == 6
    assert row["current_pa"] == pytest.approx(216.546, abs=1e-3)  # LastMeasuredScreenCurrent
    assert row["dwell_us"] == pytest.approx(1000) and row["frame_time_s"] == pytest.approx(0.288)
    assert row["pixel_size_nm"] == pytest.approx(3.5992, abs=1e-4)
    assert (row["shape_y"], row["shape_x"]) == (16, 16)
    assert row["aperture_um"] == pytest.approx(70) and row["magnification"] == 225000
    assert row["time"] == "2024-02-29T06:58:04+00:00"  # UTC, as Velox records it
    table = DoseTable()
    table.add(**row)
    computed = table.frame.iloc[0]
    assert computed.problems == ""
    # I · dwell / (e · step²) with the recorded values, by hand: 1043.3 e/Å²
    expected = 216.546e-12 * 1e-3 / 1.602176634e-19 / 35.9925**2
    assert computed.probe_dose_e_A2 == pytest.approx(expected, rel=1e-4)
    assert computed.probe_dose_e_A2 == pytest.approx(
        stem_probe_dose(row["current_pa"] * 1e-12, row["pixel_size_nm"] * 1e-9, 1e-3)
    )
    assert computed.dose_e_A2 == pytest.approx(computed.flux_e_A2_s * 0.288)


def test_serialem_mdoc_gives_one_row_per_image():
    path = real_file("images/serialem_mdoc/tilt_series.mdoc")
    rows = rows_from_file(path)
    assert len(rows) == 41
    first = rows[0]
    assert first["mode"] == "TEM" and first["spot"] == 8 and first["exposure_s"] == 0.8
    assert first["pixel_size_nm"] == pytest.approx(0.54) and first["magnification"] == 105000
    assert first["time"] == "2015-11-30T15:21:38"
    assert (first["shape_y"], first["shape_x"]) == (958, 924)
    # mean counts 623.699, halved by SerialEM, over 0.8 s
    assert first["counts_per_pixel_per_s"] == pytest.approx(623.699 * 2 / 0.8)
    table = DoseTable(accumulation="exposure")
    for row in rows:
        table.add(**row, counts_per_electron=10.0)
    frame = table.frame
    assert (frame.problems == "").all()
    assert frame.elapsed_s.is_monotonic_increasing and frame.elapsed_s.iloc[-1] > 0
    assert frame.flux_e_A2_s.iloc[0] == pytest.approx(623.699 * 2 / 0.8 / 10 / 5.4**2)
    assert frame.cumulative_e_A2.iloc[-1] == pytest.approx(frame.dose_e_A2.sum())


def test_tvips_tiff_exposure_in_seconds():
    path = real_file("images/tvips/TVIPS_bin4.tif")
    (row,) = rows_from_file(path)
    assert row["mode"] == "TEM" and row["exposure_s"] == pytest.approx(0.4)
    assert row["pixel_size_nm"] == pytest.approx(1.4208, abs=1e-4)
    assert row["magnification"] == 32000  # TemMagnification, not the camera's


def test_4d_stem_metadata_of_this_project():
    from napari_emcal.samples import overfocus_grating

    data, metadata = overfocus_grating()
    row = row_from_metadata({"emcal": metadata}, image="4D", shape=data.shape[:2])
    assert row["mode"] == "STEM"
    assert row["pixel_size_nm"] == pytest.approx(metadata["scan_step"][1] * 1e9)
    assert row["dwell_us"] == pytest.approx(metadata["dwell_time"] * 1e6)
    assert (row["shape_y"], row["shape_x"]) == data.shape[:2]
    assert row["voltage_kv"] == pytest.approx(metadata["beam_energy"] / 1000)


def test_4d_file_is_read_lazily(tmp_path):
    path = tmp_path / "scan.npy"
    np.save(path, np.zeros((8, 6, 16, 16), np.uint16))
    (row,) = rows_from_file(path)
    assert (row["image"], row["shape_y"], row["shape_x"]) == ("scan", 8, 6)  # the scan
    np.save(path, np.zeros((32, 48), np.uint16))
    (row,) = rows_from_file(path)
    assert (row["shape_y"], row["shape_x"]) == (32, 48)  # a 2D image


def test_unreadable_files(tmp_path):
    with pytest.raises(InvalidDataError, match="cannot read"):
        rows_from_file(tmp_path / "absent.emd")
    bad = tmp_path / "x.npy"
    bad.write_text("not numpy")
    with pytest.raises(InvalidDataError, match="cannot read"):
        rows_from_file(bad)


def test_mrc_with_a_thermo_fisher_extended_header(tmp_path):
    import mrcfile
    from mrcfile.dtypes import get_ext_header_dtype

    dtype = get_ext_header_dtype(b"FEI1")
    header = np.zeros(1, dtype=dtype)
    header["Metadata size"], header["Metadata version"] = dtype.itemsize, 1
    header["HT"], header["Spot index"], header["Magnification"] = 300000, 5, 50000
    header["Pixel size X"] = header["Pixel size Y"] = 2e-10
    header["Integration time"] = 1.5
    header["Timestamp"] = 45000.5  # days since 1899-12-30: 2023-03-15 12:00
    header["Illumination mode"] = b"Parallel"
    path = tmp_path / "fei.mrc"
    with mrcfile.new(path) as mrc:
        mrc.set_data(np.zeros((32, 48), np.float32))
        mrc.set_extended_header(header)
        mrc.header.exttyp = b"FEI1"
    (row,) = rows_from_file(path)
    assert row["voltage_kv"] == 300 and row["spot"] == 5 and row["magnification"] == 50000
    assert row["pixel_size_nm"] == pytest.approx(0.2) and row["exposure_s"] == 1.5
    assert row["time"] == "2023-03-15T12:00:00" and row["mode"] == "TEM"
    assert (row["shape_y"], row["shape_x"]) == (32, 48)


def test_a_layer_opened_by_this_project_uses_the_recorded_values():
    from napari_emcal.io.images import open_image

    image, metadata = open_image(real_file("images/fei_helios/FEI-Helios-Ebeam-8bits.tif"))
    (row,) = rows_from_layer("helios", image.shape, {"emcal": metadata})
    assert row["current_pa"] == pytest.approx(6.25)  # EBeam.BeamCurrent is in A
    assert row["voltage_kv"] == pytest.approx(5.0) and row["mode"] == "STEM"
