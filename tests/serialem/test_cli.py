"""``emcal image-shift`` and its siblings."""

import json

import numpy as np

from napari_emcal.cli import main
from napari_emcal.serialem import simulate as sim


def test_image_shift_json_and_refusals(tmp_path, capsys):
    truth = sim.rotation_matrix(190.0, -61.0, skew=0.02)
    path = sim.write_series(sim.simulate_series(truth, binning=2, seed=8), tmp_path / "IS.mrc")
    assert main(["image-shift", str(path), "--json", str(tmp_path / "is.json")]) == 0
    out = capsys.readouterr().out
    assert "ImageShiftMatrix 1" in out
    document = json.loads((tmp_path / "is.json").read_text())
    matrix = document["values"]["matrix"]
    assert matrix["unit"] == "px"
    error = np.abs(np.array(matrix["value"]) - truth)
    assert error.max() < 0.003 * np.linalg.norm(truth)
    assert (error <= 3 * np.array(matrix["sigma"])).all()
    assert isinstance(document["notes"], list)

    # no image shifts: exit 2, one line
    still = sim.write_series(
        sim.simulate_series(truth, step=0.0, shape=(64, 64)), tmp_path / "still.mrc"
    )
    assert main(["image-shift", str(still), "--no-history"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "never changes" in err
    assert main(["image-shift", str(tmp_path / "absent.mrc")]) == 2


def test_dead_time_and_beam_intensity(tmp_path, capsys):
    exposures = np.linspace(0.02, 0.2, 6)
    series = sim.intensity_series(
        np.full(6, 0.4), current_at=lambda i: 500.0, exposure_s=exposures, dead_time_s=0.01
    )
    path = sim.write_series(series, tmp_path / "dead.mrc")
    assert main(["dead-time", str(path), "--json", str(tmp_path / "d.json"), "--no-history"]) == 0
    value = json.loads((tmp_path / "d.json").read_text())["values"]["dead_time"]
    assert abs(value["value"] - 0.01) < 0.001
    series = sim.intensity_series(
        np.linspace(0.3, 0.5, 6), current_at=lambda i: 3000.0 * np.exp(-5 * (i - 0.3))
    )
    path = sim.write_series(series, tmp_path / "beam.mrc")
    assert main(["beam-intensity", str(path), "--mdoc-only", "--no-history"]) == 0
    assert "BeamIntensityTable 6 20 7 0" in capsys.readouterr().out


def test_high_defocus_is_from_two_series(tmp_path, capsys):
    focus = sim.rotation_matrix(230.0, 12.0)
    a = np.radians(-3.0)
    ratio = 1.06 * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    paths = [
        sim.write_series(
            sim.simulate_series(m, seed=20 + k, defocus_um=-80.0 * k), tmp_path / f"{k}.mrc"
        )
        for k, m in enumerate((focus, ratio @ focus))
    ]
    out_json = tmp_path / "h.json"
    assert main(["high-defocus-is", *map(str, paths), "--json", str(out_json), "--no-history"]) == 0
    values = json.loads(out_json.read_text())["values"]
    assert abs(values["scale"]["value"] - 1.06) < 0.002
    assert abs(values["rotation"]["value"] + 3.0) < 0.1
    # SerialEM's camera y runs along the rows of an MRC it wrote: the same rotation
    line = [x for x in capsys.readouterr().out.splitlines() if "HighFocusISCal" in x][0]
    assert line.split()[2:5] == ["7", "1", "-80.000000"]
    assert abs(float(line.split()[7]) + 3.0) < 0.1


def test_no_lines_without_mag_index(tmp_path, capsys):
    truth = sim.rotation_matrix(200.0, 45.0)
    path = sim.write_series(
        sim.simulate_series(truth, seed=2, shape=(128, 128)), tmp_path / "s.mrc"
    )
    mdoc = tmp_path / "s.mrc.mdoc"
    mdoc.write_text("\n".join(x for x in mdoc.read_text().splitlines() if "MagIndex" not in x))
    out_json = tmp_path / "s.json"
    assert main(["image-shift", str(path), "--json", str(out_json), "--no-history"]) == 0
    assert "not written" in capsys.readouterr().out
    document = json.loads(out_json.read_text())
    assert document["serialem"] == [] and any("MagIndex" in n for n in document["notes"])
    assert main(["image-shift", str(path), "--lines", str(tmp_path / "l.txt"), "--no-history"]) == 2
    assert "MagIndex" in capsys.readouterr().err
