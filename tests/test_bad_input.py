"""Bad input reaches a specific exception with a one-line message, never a raw error (issue 19)."""

import json

import numpy as np
import pytest

from napari_emcal.dose import DoseTable
from napari_emcal.errors import InvalidDataError, InvalidParameterError
from napari_emcal.grating import find_pixel_size
from napari_emcal.io.images import open_image
from napari_emcal.io.readers import open_4d
from napari_emcal.overfocus import TwinParams

from .conftest import real_file


@pytest.mark.parametrize("opener", [open_image, open_4d])
def test_zero_byte_npy(tmp_path, opener):
    path = tmp_path / "empty.npy"
    path.write_bytes(b"")
    with pytest.raises(InvalidDataError, match="empty"):
        opener(path)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"marker": (1e6, 1e6)}, "outside the autocorrelation"),
        ({"marker": "ab"}, "marker must be a lag"),
        ({"marker": ("a", "b")}, "marker must be a lag"),
    ],
)
def test_find_pixel_size_bad_marker(kwargs, match):
    image = np.random.default_rng(0).random((128, 128))
    with pytest.raises(InvalidParameterError, match=match):
        find_pixel_size(image, spacing_nm=463, **kwargs)


def test_find_pixel_size_elongated_image():
    with pytest.raises(InvalidParameterError, match="too elongated"):
        find_pixel_size(np.random.default_rng(0).random((100000, 40)), spacing_nm=463)


@pytest.mark.parametrize("budget", ["abc", True, -1, float("nan"), [1]])
def test_dose_budget(budget):
    with pytest.raises(InvalidParameterError, match="budget"):
        DoseTable(budget=budget)


@pytest.mark.parametrize(
    "document, match",
    [
        ({"parameters": [1, 2]}, "Not a twin-parameter document"),
        ([1, 2], "Not a twin-parameter document"),
        ({"parameters": {"overfocus": {"value": 1, "unit": None}}}, "unit must be text"),
        ({"parameters": {"overfocus": {"value": 1, "unit": 5}}}, "unit must be text"),
        ({"parameters": {"overfocus": {"value": "abc", "unit": "um"}}}, "must be a number"),
        ({"parameters": {"overfocus": {"value": [1, 2], "unit": "um"}}}, "must be a number"),
    ],
)
def test_twin_params_documents(tmp_path, document, match):
    path = tmp_path / "p.json"
    path.write_text(json.dumps(document))
    with pytest.raises(InvalidParameterError, match=match):
        TwinParams.load(path)


def test_twin_params_in_another_encoding(tmp_path):
    path = tmp_path / "p.json"
    path.write_bytes(
        '{"parameters": {"overfocus": {"value": 1.2, "unit": "µm"}}}'.encode("latin-1")
    )
    with pytest.raises(InvalidParameterError, match="not UTF-8"):
        TwinParams.load(path)


def _cut(source, target, size):
    target.write_bytes(source.read_bytes()[:size])
    return target


def test_cut_blockfile_is_refused_when_opened(tmp_path):
    blo = _cut(real_file("4d/blockfile/test1.blo"), tmp_path / "cut.blo", 60000)
    with pytest.raises(InvalidDataError, match="cut.blo is cut: 60000 bytes, its header"):
        open_4d(blo)


def test_merlin_cut_after_one_frame(tmp_path):
    source = real_file("4d/merlin_4x2/001_4x2_6bit.mib")
    _cut(source, tmp_path / "c.mib", 100000)
    (tmp_path / "c.hdr").write_bytes(source.with_suffix(".hdr").read_bytes())
    with pytest.raises(InvalidDataError, match="single frame"):
        open_4d(tmp_path / "c.mib")


@pytest.mark.parametrize("suffix", [".mib", ".mrc", ".blo", ".tif"])
def test_empty_files_say_so(tmp_path, suffix):
    path = tmp_path / f"e{suffix}"
    path.write_bytes(b"")
    opener = open_image if suffix in (".mrc", ".tif") else open_4d
    with pytest.raises(InvalidDataError, match="the file is empty"):
        opener(path)


def test_cut_mrc_image(tmp_path):
    source = next(real_file("images/mrc_fei").glob("*.mrc"))
    with pytest.raises(InvalidDataError, match="shorter than its header says"):
        open_image(_cut(source, tmp_path / "cut.mrc", 3000))
