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


COMMANDS = {
    "info": lambda d: ["info", d],
    "history": lambda d: ["history"],
    "overfocus": lambda d: ["overfocus", "sample", "--calibrate", "--no-history"],
    "pixel-size": lambda d: ["pixel-size", "sample"],
    "high-defocus": lambda d: ["high-defocus", "sample"],
    "check": lambda d: ["check", d],
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
