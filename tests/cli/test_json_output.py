"""``--json -``: standard output carries the JSON alone (the human text goes to standard
error), for every command that takes --json, so that it can be piped to jq."""

import json
import subprocess
import sys

import numpy as np
import pytest

from napari_emcal.cli import build_parser, main


@pytest.fixture
def dataset(tmp_path):
    path = tmp_path / "scan.npy"
    np.save(path, np.random.default_rng(0).poisson(5, (4, 4, 16, 16)).astype(np.uint16))
    return str(path)


def _series(dataset, kind):
    """A small simulated SerialEM series beside ``dataset``: its path(s) as arguments."""
    from pathlib import Path

    from napari_emcal.serialem import simulate as sim

    folder = Path(dataset).parent
    matrix = sim.rotation_matrix(150.0, 30.0)
    if kind in ("image_shift", "stage"):
        series = sim.simulate_series(matrix, setting=kind, shape=(128, 128))
        return [str(sim.write_series(series, folder / f"{kind}.mrc"))]
    if kind == "high_defocus":
        return [
            str(
                sim.write_series(
                    sim.simulate_series(m, shape=(128, 128), defocus_um=d), folder / f"{d}.mrc"
                )
            )
            for m, d in ((matrix, 0.0), (1.05 * matrix, -50.0))
        ]
    exposures = np.linspace(0.05, 0.3, 5) if kind == "dead" else 0.5
    series = sim.intensity_series(
        np.full(5, 0.4) if kind == "dead" else np.linspace(0.3, 0.5, 5),
        current_at=lambda i: 1000.0 * np.exp(-4 * (i - 0.3)),
        exposure_s=exposures,
    )
    return [str(sim.write_series(series, folder / f"{kind}.mrc"))]


COMMANDS = {
    "info": lambda d: ["info", d],
    "history": lambda d: ["history"],
    "overfocus": lambda d: ["overfocus", "sample", "--calibrate", "--no-history"],
    "pixel-size": lambda d: ["pixel-size", "sample"],
    "high-defocus": lambda d: ["high-defocus", "sample"],
    "check": lambda d: ["check", d],
    "camera-length": lambda d: ["camera-length", "sample", "--no-history"],
    "image-shift": lambda d: ["image-shift", *_series(d, "image_shift"), "--no-history"],
    "stage-shift": lambda d: ["stage-shift", *_series(d, "stage"), "--no-history"],
    "high-defocus-is": lambda d: ["high-defocus-is", *_series(d, "high_defocus"), "--no-history"],
    "beam-intensity": lambda d: ["beam-intensity", *_series(d, "beam"), "--no-history"],
    "dead-time": lambda d: ["dead-time", *_series(d, "dead"), "--no-history"],
}


def test_every_command_with_json_is_covered():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    with_json = {
        name
        for name, p in sub.choices.items()
        if any("--json" in a.option_strings for a in p._actions)
    }
    assert with_json == set(COMMANDS)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_json_to_stdout_is_only_json(command, dataset, capsys):
    assert main([*COMMANDS[command](dataset), "--json", "-"]) == 0
    out, err = capsys.readouterr()
    json.loads(out)  # nothing but the document
    assert err.strip()  # the human text is still shown, on standard error


def test_info_pipes_into_json_tool(dataset):
    emcal = subprocess.run(
        [sys.executable, "-m", "napari_emcal.cli", "info", dataset, "--json", "-"],
        capture_output=True,
        check=True,
    )
    tool = subprocess.run(
        [sys.executable, "-m", "json.tool"], input=emcal.stdout, capture_output=True
    )
    assert tool.returncode == 0, tool.stderr
    assert json.loads(tool.stdout)["kind"] == "4D STEM"
    assert b"4D STEM" in emcal.stderr


def test_overfocus_json_without_calibrate_is_refused(capsys):
    assert main(["overfocus", "sample", "--json", "-"]) == 2
    assert "add --calibrate" in capsys.readouterr().err
