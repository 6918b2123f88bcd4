"""SerialEM's lines, parsed back in the field order of SerialEM's ReadCalibration."""

import numpy as np
import pytest

from napari_emcal.serialem import image_shift_matrix, read_series
from napari_emcal.serialem import lines as se
from napari_emcal.serialem import simulate as sim
from napari_emcal.serialem.intensity import beam_intensity, dead_time
from napari_emcal.serialem.shifts import HighDefocusIS


def parse_calibrations(text: str) -> dict:
    """A parser written from ParameterIO.cpp's ReadCalibration: which item of each line
    is which field (items counted from 0, the keyword being item 0)."""
    out = {"is": {}, "stage": {}, "focus_is": [], "beam": []}
    rows = iter([line.split() for line in text.splitlines() if line.strip()])
    for items in rows:
        name = items[0]
        if name == "ImageShiftMatrix":
            for _ in range(int(items[1])):
                cal = next(rows)
                index, camera = int(cal[0]), int(cal[1])
                out["is"][(index, camera)] = [float(v) for v in cal[2:6]]
        elif name == "StageToCameraMatrix":
            index, camera = int(items[1]), int(items[2])
            assert len(items) > 6
            focus = float(items[7]) if len(items) > 8 else None
            out["stage"][(index, camera)] = ([float(v) for v in items[3:7]], focus)
        elif name in ("HighFocusISCal", "HighFocusMagCal"):
            out["focus_is"].append(
                dict(
                    spot=int(items[1]),
                    probe=int(items[2]),
                    defocus=float(items[3]),
                    intensity=float(items[4]),
                    scale=float(items[5]),
                    rotation=float(items[6]),
                    crossover=float(items[7]) if len(items) > 7 else 0.0,
                    aperture=int(items[8]) if len(items) > 8 else 0,
                    mag_index=int(items[9]) if len(items) > 9 else 0,
                )
            )
        elif name == "BeamIntensityTable":
            count, index, spot = int(items[1]), int(items[2]), int(items[3])
            probe = int(items[7]) if len(items) > 8 else 1
            pairs = [next(rows) for _ in range(count)]
            out["beam"].append(
                dict(
                    mag_index=index,
                    spot=spot,
                    probe=probe,
                    currents=[float(p[0]) for p in pairs],
                    intensities=[float(p[1]) for p in pairs],
                )
            )
    return out


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    truth = sim.rotation_matrix(210.0, 128.0, skew=0.03)
    series = sim.simulate_series(truth, binning=2, seed=4, mag_index=27, camera=2)
    read = read_series(sim.write_series(series, tmp_path_factory.mktemp("s") / "S.mrc"))
    return read, image_shift_matrix(read.records)


def test_image_shift_and_stage_lines_round_trip(fitted):
    read, fit = fitted
    record = read.records[0]
    text = "\n".join(
        se.image_shift_lines([(fit, record)], read.row_is_camera_y)
        + se.stage_lines(fit, record, read.row_is_camera_y)
    )
    parsed = parse_calibrations(text)
    xpx, xpy, ypx, ypy = parsed["is"][(27, 2)]
    back = se.array_matrix([[xpx, xpy], [ypx, ypy]], read.row_is_camera_y)
    np.testing.assert_allclose(back, fit.matrix, atol=1e-5)
    values, focus = parsed["stage"][(27, 2)]
    assert focus == se.UNKNOWN_FOCUS
    np.testing.assert_allclose(values, [xpx, xpy, ypx, ypy])


def test_camera_axes_convention():
    # content moving +col and +row per unit: SerialEM's matrix is the negative (a
    # point's image shift brings it to the centre), its y along the rows of an MRC
    # (True) and against those of a TIFF (False)
    content = np.array([[100.0, 0.0], [0.0, 50.0]])
    np.testing.assert_allclose(se.camera_matrix(content, False), [[-100, 0], [0, 50]])
    np.testing.assert_allclose(se.camera_matrix(content, True), [[-100, 0], [0, -50]])
    with pytest.raises(ValueError, match="sense of the rows"):
        se.camera_matrix(content, None)


def test_high_focus_is_line(fitted):
    read, fit = fitted
    result = HighDefocusIS(-120.0, 0.0, np.eye(2), 1.0712, 0.001, -3.25, 0.05, fit, fit)
    assert read.row_is_camera_y is True  # an MRC: the stored array's rotation unchanged
    assert result.serialem_rotation_deg(False) == 3.25  # a TIFF: the opposite
    line = se.high_focus_is_line(result, read.records[0], read.row_is_camera_y)
    (cal,) = parse_calibrations(line)["focus_is"]
    assert cal == dict(
        spot=7,
        probe=1,
        defocus=-120.0,
        intensity=0.4,
        scale=1.0712,
        rotation=-3.25,
        crossover=0.0,
        aperture=0,
        mag_index=27,
    )


def test_beam_intensity_lines_and_fit():
    def current_at(intensity):  # counts per unbinned px per s, falling as the beam spreads
        return 4000.0 * np.exp(-6.0 * (intensity - 0.3)) + 50.0

    intensities = np.linspace(0.3, 0.6, 9)
    series = sim.intensity_series(intensities, current_at=current_at, binning=2, seed=1)
    records = _records_of(series)
    result = beam_intensity(records)
    np.testing.assert_allclose(result.currents, current_at(intensities), rtol=0.01)
    assert result.intensity_for(current_at(0.45)) == pytest.approx(0.45, abs=0.01)
    text = "\n".join(se.beam_intensity_lines(result, records[0]))
    (table,) = parse_calibrations(text)["beam"]
    assert table["mag_index"] == 20 and table["spot"] == 7 and table["probe"] == 1
    np.testing.assert_allclose(table["intensities"], intensities, atol=1e-6)
    np.testing.assert_allclose(table["currents"], result.currents, rtol=1e-5)


def test_dead_time():
    exposures = np.linspace(0.02, 0.2, 8)
    series = sim.intensity_series(
        np.full(8, 0.4),
        current_at=lambda i: 800.0,
        exposure_s=exposures,
        dead_time_s=0.012,
        binning=2,
        seed=3,
        shape=(128, 128),
    )
    result = dead_time(_records_of(series))
    assert result.dead_time_s == pytest.approx(0.012, abs=0.001)
    assert abs(result.dead_time_s - 0.012) < 3 * result.dead_time_sigma_s + 1e-5
    assert se.dead_time_line(result).startswith("ShutterDeadTime 0.01")


def _records_of(series):
    from napari_emcal.serialem.series import _record

    records = [_record(i, s) for i, s in enumerate(series.sections)]
    for record, image in zip(records, series.images, strict=True):
        record.image = image
    return records


def _write_as_serialem(series, path):
    """The stack as SerialEM writes it: ``series.images`` are its memory images (row 0 at
    the top of its display); rows reversed in an MRC file (KStoreMRC/KStoreIMOD:
    convertForWriting(..., needFlipped=true)), kept in a TIFF (tiffWriteSection(...,
    inverted=1))."""
    import tifffile

    images = np.asarray(series.images, dtype=np.float32)
    if path.suffix == ".mrc":
        flipped = sim.SimulatedSeries(images[:, ::-1, :].copy(), series.sections, series.truth)
        return sim.write_series(flipped, path)
    tifffile.imwrite(path, images)
    path.with_name(path.name + ".mdoc").write_text(sim.mdoc_text(series, path.name))
    return path


@pytest.mark.parametrize("suffix", [".mrc", ".tif"])
def test_serialem_camera_matrices_and_rotation_from_files(tmp_path, suffix):
    """SerialEM's IS-to-camera matrix at focus C0 and at high defocus C1 = s·R(θ)·C0
    (ShiftManager.cpp MatScaleRotate in FocusAdjustedStageToCamera: R turns camera +x
    towards camera +y), camera y up the display, against the memory rows. A point's image
    shift brings it to the centre: the memory image's content moves by -diag(1, -1)·C per
    unit IS. Written as SerialEM writes MRC and TIFF, the lines must give back C0 and +θ."""
    from napari_emcal.serialem.shifts import high_defocus_image_shift

    theta, scale = 4.0, 1.05
    c0 = np.array([[180.0, -95.0], [88.0, 175.0]])
    a = np.radians(theta)
    c1 = scale * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]) @ c0
    rows_down = np.diag([1.0, -1.0])  # memory (col, row) from camera (x, y)
    fits, records = [], []
    for k, camera in enumerate((c0, c1)):
        memory = sim.simulate_series(
            -rows_down @ camera, seed=30 + k, defocus_um=-80.0 * k, mag_index=27, camera=2
        )
        read = read_series(_write_as_serialem(memory, tmp_path / f"{k}{suffix}"))
        assert read.row_is_camera_y is (suffix == ".mrc")
        fits.append(image_shift_matrix(read.records))
        records.append(read.records[0])
    _, line = se.image_shift_lines([(fits[0], records[0])], read.row_is_camera_y)
    xpx, xpy, ypx, ypy = (float(v) for v in line.split()[2:6])
    np.testing.assert_allclose([[xpx, xpy], [ypx, ypy]], c0, atol=0.02 * np.abs(c0).max())
    result = high_defocus_image_shift(fits[0], fits[1], focus_defocus_um=0.0, defocus_um=-80.0)
    (cal,) = parse_calibrations(se.high_focus_is_line(result, records[1], read.row_is_camera_y))[
        "focus_is"
    ]
    assert cal["scale"] == pytest.approx(scale, rel=2e-3)
    assert cal["rotation"] == pytest.approx(theta, abs=0.1)
