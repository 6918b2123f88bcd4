"""Property-based tests (Hypothesis) of the parsers and parameter checks (issue 38 item 7):
whatever they are given, they answer or refuse with the project's own exceptions, quickly,
and what they accept is within the stated ranges. Hostile files come from
``tests/hostile_files.py``."""

import csv
import json
import math
import struct

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from napari_emcal._checks import PLAUSIBLE, plausible, rotation_deg
from napari_emcal._files import (
    FORMULA_START,
    check_readable,
    read_json,
    spreadsheet_text,
    unescape_spreadsheet_text,
)
from napari_emcal.errors import EmcalError, InvalidDataError, InvalidParameterError
from napari_emcal.grating import PixelSizeTable
from napari_emcal.grating.table import MAX_CAMERA_BINNING, camera_binning
from napari_emcal.history import History
from napari_emcal.io.readers import open_4d
from napari_emcal.overfocus import TwinParams
from tests import hostile_files as hostile

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([0, -0.0, 1e-300, 1e300, 5e-324]),
)
anything = st.one_of(numbers, st.text(max_size=20), st.none(), st.booleans())


# -- spreadsheets -------------------------------------------------------------------------------
@FUZZ
@given(st.text())
def test_escaped_text_never_starts_a_formula_and_round_trips(text):
    escaped = spreadsheet_text(text)
    assert unescape_spreadsheet_text(escaped) == text
    if escaped.startswith(FORMULA_START):
        assert math.isfinite(float(escaped))  # only a plain number may


@settings(FUZZ, max_examples=25)
@given(st.lists(st.tuples(st.text(max_size=12), st.floats(0.01, 100.0)), min_size=1, max_size=5))
def test_table_csv_round_trip_keeps_any_text(tmp_path_factory, rows):
    path = tmp_path_factory.mktemp("csv") / "t.csv"
    table = PixelSizeTable()
    for image, pixel in rows:
        table.add_row(image=image, pixel_size_nm=pixel)
    table.to_csv(path)
    with open(path, newline="", encoding="utf-8") as stream:
        for row in list(csv.reader(stream))[1:]:
            for cell in row:
                assert not cell.startswith(FORMULA_START) or math.isfinite(float(cell))
    back = PixelSizeTable.from_csv(path)
    assert back.frame["image"].tolist() == [r.strip() for r in table.frame["image"]]
    assert back.frame["pixel_size_nm"].tolist() == pytest.approx(
        table.frame["pixel_size_nm"].tolist()
    )


# -- parameter checks ------------------------------------------------------------------------------
@FUZZ
@given(st.sampled_from(sorted(PLAUSIBLE)), anything)
def test_plausible_accepts_only_the_stated_range(name, value):
    try:
        number = plausible(name, value)
    except InvalidParameterError:
        return
    low, high, _ = PLAUSIBLE[name]
    assert math.isfinite(number) and low <= abs(number) <= high


@FUZZ
@given(anything)
def test_rotation_is_finite_wrapped_and_congruent(value):
    try:
        wrapped = rotation_deg(value)
    except InvalidParameterError:
        return
    assert -180.0 < wrapped <= 180.0
    assert math.isclose(
        math.remainder(wrapped - float(value), 360.0), 0.0, abs_tol=1e-9 * max(1, abs(float(value)))
    )


@FUZZ
@given(st.fixed_dictionaries({name: numbers for name in (
    "overfocus", "scan_pixel_size", "camera_length", "detector_pixel_size", "cy", "cx",
    "scan_rotation")}))  # fmt: skip
def test_twin_parameters_accept_only_plausible_values(values):
    try:
        params = TwinParams(**values)
    except InvalidParameterError:
        return
    for name in ("overfocus", "scan_pixel_size", "camera_length", "detector_pixel_size"):
        low, high, _ = PLAUSIBLE[name]
        assert low <= abs(getattr(params, name)) <= high
    assert -180.0 < params.scan_rotation <= 180.0


@FUZZ
@given(st.dictionaries(st.text(max_size=8), anything, max_size=4), st.text(max_size=30))
def test_history_records_only_finite_numbers_and_times(tmp_path_factory, values, time):
    history = History(tmp_path_factory.mktemp("h") / "h.sqlite")
    try:
        history.record("overfocus", values, time=time)
    except InvalidParameterError:
        assert history.entries() == []
        return
    (entry,) = history.entries()
    json.dumps(entry.to_json_dict(), allow_nan=False)  # strict JSON
    assert all(isinstance(v, bool) or math.isfinite(v) for v in entry.values.values())


# -- parsers ------------------------------------------------------------------------------------
metadata = st.recursive(
    anything,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.sampled_from(["Binning", "binning x", "BinningX", "CameraBinning", "other"]),
            inner,
            max_size=3,
        ),
    ),
    max_leaves=12,
)


@FUZZ
@given(metadata)
def test_camera_binning_from_any_metadata(document):
    found = camera_binning(document)
    if found is not None:
        binning, source = found
        assert isinstance(binning, int) and 1 <= binning <= MAX_CAMERA_BINNING
        assert source.startswith("metadata: ")


@FUZZ
@given(st.binary(max_size=300))
def test_json_inputs_fail_only_cleanly(tmp_path_factory, content):
    path = tmp_path_factory.mktemp("j") / "p.json"
    path.write_bytes(content)
    try:
        read_json(path)
    except InvalidDataError:
        pass
    try:
        TwinParams.load(path)
    except (InvalidParameterError, InvalidDataError):
        pass


@FUZZ
@given(
    st.integers(-(2**31), 2**31 - 1),
    st.integers(-(2**31), 2**31 - 1),
    st.integers(-(2**31), 2**31 - 1),
    st.sampled_from([0, 1, 2, 6, 12, 101, 7, -1]),
    st.integers(-(2**31), 2**31 - 1),
    st.integers(0, 4096),
)
def test_mrc_headers_are_checked_against_the_file(tmp_path_factory, nx, ny, nz, mode, ext, data):
    header = bytearray(1024)
    struct.pack_into("<4i", header, 0, nx, ny, nz, mode)
    struct.pack_into("<i", header, 92, ext)
    header[212:214] = b"\x44\x44"
    path = tmp_path_factory.mktemp("m") / "x.mrc"
    path.write_bytes(bytes(header) + bytes(data))
    try:
        check_readable(path)
    except InvalidDataError:
        return
    per = {0: 1, 1: 2, 2: 4, 6: 2, 12: 2, 101: 0.5}[mode]
    assert 1024 + ext + nx * ny * nz * per <= 1024 + data


@FUZZ
@given(st.one_of(st.text(max_size=12), st.lists(anything, max_size=3)))
def test_scan_shape_of_any_value(tmp_path_factory, shape):
    folder = tmp_path_factory.mktemp("s")
    np.save(folder / "x.npy", np.ones((16, 4, 4), np.float32))
    try:
        data = open_4d(folder / "x.npy", scan_shape=shape).data
    except (InvalidParameterError, InvalidDataError):
        return
    assert data.shape[:2] in ((1, 16), (2, 8), (4, 4), (8, 2), (16, 1))


HOSTILE_4D = {
    "external": lambda d: hostile.h5_external_storage(d, "/etc/passwd"),
    "virtual": lambda d: hostile.h5_virtual(d, hostile.outside_file(d).parent / "s.h5"),
    "huge": hostile.h5_huge_declared,
    "unwritten": hostile.h5_unallocated,
    "arina": lambda d: hostile.arina_master_linking(d, "/etc/passwd"),
    "empad": lambda d: hostile.empad_xml(d, "/dev/zero"),
}


@FUZZ
@given(st.sampled_from(sorted(HOSTILE_4D)), st.floats(0.0, 1.0))
def test_hostile_and_truncated_4d_files(tmp_path_factory, kind, keep):
    folder = tmp_path_factory.mktemp("h")
    path = HOSTILE_4D[kind](folder)
    content = path.read_bytes()
    path.write_bytes(content[: int(len(content) * keep)])  # cut anywhere, or not at all
    with pytest.raises(EmcalError):
        open_4d(path)


@FUZZ
@given(
    st.lists(
        st.fixed_dictionaries(
            {"magnification": anything, "pixel_size_nm": anything, "binning": anything,
             "image": st.text(max_size=8)}
        ),
        min_size=1,
        max_size=4,
    )
)  # fmt: skip
def test_pixel_size_table_from_any_frame(rows):
    try:
        table = PixelSizeTable.from_frame(pd.DataFrame(rows))
    except (InvalidDataError, InvalidParameterError):
        return
    frame = table.frame
    low, high, _ = PLAUSIBLE["pixel_size_nm"]
    assert frame["pixel_size_nm"].between(low, high).all()
    assert (frame["binning"] >= 1).all()
