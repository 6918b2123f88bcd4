import json

import numpy as np
import pytest

from napari_emcal.cli import main
from napari_emcal.diffraction.simulate import halo_pattern


@pytest.fixture(autouse=True)
def _history(tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_EMCAL_HISTORY", str(tmp_path / "history.sqlite"))


def test_camera_length_on_the_sample(tmp_path, capsys):
    out = tmp_path / "cal.json"
    assert main(["camera-length", "sample", "--json", str(out)]) == 0
    document = json.loads(out.read_text())
    values = document["values"]
    assert values["camera_length"]["unit"] == "m"
    assert values["camera_length"]["value"] == pytest.approx(0.150, rel=1e-3)
    assert values["centre"]["value"] == pytest.approx([243.5, 264.5], abs=0.1)
    assert values["ellipse_axis_ratio"]["value"] == pytest.approx(1.015, abs=0.002)
    assert values["ellipse_angle_deg"]["value"] == pytest.approx(35.0, abs=2.0)
    assert values["reciprocal_pixel_size"]["unit"] == "1/m"
    # the beam energy and pixel came from the (sample's) metadata, and say so
    assert "sample" in values["beam_energy"]["source"]
    assert document["notes"]
    # a second run at the same setting is compared with the first (no drift)
    assert main(["camera-length", "sample", "--json", str(out)]) == 0
    assert "drift" not in capsys.readouterr().out


def test_refusal_is_one_line_exit_2_and_no_camera_length(tmp_path, capsys):
    path = tmp_path / "halo.npy"
    np.save(path, halo_pattern((256, 256)))
    out = tmp_path / "cal.json"
    code = main(
        [
            "camera-length",
            str(path),
            "--beam-energy-kev",
            "200",
            "--detector-pixel-um",
            "15",
            "--json",
            str(out),
            "--no-history",
        ]
    )
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "amorphous" in err
    assert not out.exists()


def test_missing_beam_energy_is_asked_for(tmp_path, capsys):
    path = tmp_path / "p.npy"
    np.save(path, halo_pattern((128, 128)))
    assert main(["camera-length", str(path), "--no-history"]) == 2
    assert "--beam-energy-kev" in capsys.readouterr().err


def test_4d_dataset_is_calibrated_on_its_mean_pattern(tmp_path):
    from napari_emcal.diffraction import ring_pattern

    frames = [
        ring_pattern((256, 256), camera_length=0.07, dose=10.0, seed=seed)[0] for seed in range(4)
    ]
    truth = ring_pattern((256, 256), camera_length=0.07, dose=None)[1]
    path = tmp_path / "rings4d.npy"
    np.save(path, np.stack(frames).reshape(2, 2, 256, 256).astype(np.float32))
    out = tmp_path / "cal.json"
    code = main(
        [
            "camera-length",
            str(path),
            "--beam-energy-kev",
            "200",
            "--detector-pixel-um",
            "15",
            "--json",
            str(out),
            "--no-history",
        ]
    )
    assert code == 0
    values = json.loads(out.read_text())["values"]
    assert values["camera_length"]["value"] == pytest.approx(truth.camera_length, rel=2e-3)
