import json

import numpy as np
import tifffile

from napari_emcal.cli import main
from napari_emcal.overfocus import TwinParams
from napari_emcal.samples import overfocus_grating


def test_overfocus_sample_writes_images_and_params(tmp_path, capsys):
    assert main(["overfocus", "sample", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "blur of shifted_sum" in out and "ground truth" in out
    for name in ("point", "selected", "shifted_sum", "sum", "aperture_sum"):
        assert tifffile.imread(tmp_path / f"{name}.tif").ndim == 2
    assert TwinParams.load(tmp_path / "params.json").overfocus > 0
    assert json.loads((tmp_path / "summary.json").read_text())["images"]["aperture_sum"] == [64, 64]


def test_overfocus_file_with_params(tmp_path, capsys):
    data, metadata = overfocus_grating()
    np.save(tmp_path / "d.npy", data)
    truth = TwinParams.from_json_dict(metadata["ground_truth"])
    truth.save(tmp_path / "truth.json")
    assert main(["overfocus", str(tmp_path / "d.npy"), "--params", str(tmp_path / "truth.json")]) == 0
    assert "83.000°" in capsys.readouterr().out


def test_missing_parameters_give_a_clear_error(tmp_path, capsys):
    np.save(tmp_path / "d.npy", np.zeros((2, 2, 8, 8), np.float32))
    assert main(["overfocus", str(tmp_path / "d.npy")]) == 2
    assert "--params" in capsys.readouterr().err
