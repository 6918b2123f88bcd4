"""The check's descan for LiberTEM (CoM regression) and py4DSTEM (origin maps), run
through each tool's own code: LiberTEM's CoMUDF here, py4DSTEM where an interpreter with
it is named (it needs NumPy < 2)."""

import json
import os
import subprocess

import numpy as np
import pytest

from napari_emcal.cli import main
from napari_emcal.dataset_check import diffraction_dataset
from napari_emcal.dataset_check.export import (
    beam_centre_map,
    compare_descan,
    libertem_com_descan,
    libertem_regression,
    py4dstem_origin,
    write_py4dstem_origin,
)
from napari_emcal.dataset_check.report import check_dataset

SCAN, DETECTOR, CENTRE = (12, 16), (48, 48), (23.0, 24.5)
DESCAN = np.array([[0.15, -0.08], [0.05, 0.12]])  # not symmetric: a transpose shows


@pytest.fixture(scope="module")
def walking():
    data = diffraction_dataset(SCAN, DETECTOR, descan=DESCAN, radius=6, centre=CENTRE, seed=1)
    return data, check_dataset(data, {})[1]


@pytest.fixture(scope="module")
def bare():
    """The disk alone: LiberTEM's CoM in a fixed mask then sees exactly the disk's walk
    (with a scattering halo, the mask or the detector edge clips the walking halo and its
    CoM walks a few % less than the disk: a property of a fixed-mask CoM, not of the
    export)."""
    data = diffraction_dataset(
        SCAN, DETECTOR, descan=DESCAN, radius=6, centre=CENTRE, scatter_counts=0.0, seed=1
    )
    return data, check_dataset(data, {})[1]


def test_beam_centre_map_is_the_model():
    centre = beam_centre_map(DESCAN, CENTRE, SCAN)
    s = np.array([3, 11]) - np.array([5.5, 7.5])
    np.testing.assert_allclose(centre[:, 3, 11], np.array(CENTRE) + DESCAN @ s)
    np.testing.assert_allclose(centre[:, 1:-1, 1:-1].mean(axis=(1, 2)), CENTRE)


@pytest.mark.parametrize("rotation, flip", [(0.0, False), (37.0, True), (-120.0, False)])
def test_libertem_com_udf_with_the_exported_regression_gives_a_flat_field(bare, rotation, flip):
    from libertem.api import Context
    from libertem.udf.com import CoMUDF

    data, report = bare
    fit = report.descan
    arguments = libertem_com_descan(
        fit.matrix, fit.centre, SCAN, radius=report.beam.radius, scan_rotation=rotation,
        flip_y=flip,
    )  # fmt: skip
    arguments = {**arguments, "regression": np.array(arguments["regression"])}
    context = Context.make_with("inline")
    dataset = context.load("memory", data=data, sig_dims=2)
    field = context.run_udf(dataset, CoMUDF.with_params(**arguments))["field"].data
    raw = context.run_udf(dataset, CoMUDF.with_params(**{**arguments, "regression": -1}))
    # the descan is gone: no mean, no slope left, only counting noise
    s = np.stack(np.mgrid[: SCAN[0], : SCAN[1]], axis=-1).reshape(-1, 2)
    design = np.column_stack([np.ones(len(s)), s])
    left, *_ = np.linalg.lstsq(design, field.reshape(-1, 2), rcond=None)
    assert np.abs(left[0] + left[1:].T @ [5.5, 7.5]).max() < 0.05  # mean at the scan centre
    assert np.abs(left[1:]).max() < 0.002  # px per scan px, against 0.15 of descan
    assert field.reshape(-1, 2).std(axis=0).max() < 0.1
    assert raw["field"].data.reshape(-1, 2).std(axis=0).min() > 0.4
    # LiberTEM's own linear regression of the raw field finds the exported slopes
    own = context.run_udf(dataset, CoMUDF.with_params(**{**arguments, "regression": 1}))
    np.testing.assert_allclose(own["regression"].data, arguments["regression"], atol=2e-3)


def test_regression_turns_with_the_field():
    plain = libertem_regression(DESCAN, SCAN)
    np.testing.assert_allclose(plain[1:], DESCAN.T)  # rows d/dsy, d/dsx; columns y, x
    np.testing.assert_allclose(plain[0], -DESCAN @ [5.5, 7.5])
    flipped = libertem_regression(DESCAN, SCAN, 0.0, True)
    np.testing.assert_allclose(flipped[1:, 0], -DESCAN[0])  # the y component negated


def test_py4dstem_origin_maps_follow_the_beam(walking, tmp_path):
    _, report = walking
    fit = report.descan
    qx0, qy0 = py4dstem_origin(fit.matrix, fit.centre, SCAN)
    truth = beam_centre_map(DESCAN, CENTRE, SCAN)
    assert qx0.shape == SCAN  # (Rx, Ry) = (scan y, scan x)
    np.testing.assert_allclose(qx0, truth[0], atol=0.03)  # qx: rows (detector y)
    np.testing.assert_allclose(qy0, truth[1], atol=0.03)
    for name in ("origin.npz", "origin.json"):
        path = write_py4dstem_origin(tmp_path / name, fit.matrix, fit.centre, SCAN)
        if name.endswith(".npz"):
            with np.load(path) as stored:
                back = stored["qx0"], stored["qy0"]
        else:
            document = json.loads(path.read_text())
            back = np.array(document["qx0"]), np.array(document["qy0"])
            assert "set_origin" in document["apply"]
        np.testing.assert_allclose(back[0], qx0)
        np.testing.assert_allclose(back[1], qy0)


PY4DSTEM_ORIGIN = """
import json, sys, warnings
import numpy as np
warnings.filterwarnings("ignore")
import py4DSTEM
from py4DSTEM.process.calibration.origin import fit_origin, get_origin
data = np.load(sys.argv[1])
cube = py4DSTEM.DataCube(data=data.astype(float))
qx0, qy0, _ = get_origin(cube, r=float(sys.argv[2]))
fitted = fit_origin((np.asarray(qx0), np.asarray(qy0)), fitfunction="plane")
exported = np.load(sys.argv[3])
cube.calibration.set_origin((exported["qx0"], exported["qy0"]))
stored = cube.calibration.get_origin(3, 11)
print(json.dumps({"qx0": np.asarray(fitted[0]).tolist(), "qy0": np.asarray(fitted[1]).tolist(),
                  "at": [float(stored[0]), float(stored[1])]}))
"""


def test_py4dstem_own_origin_fit_agrees(walking, tmp_path):
    """py4DSTEM's get_origin and plane fit_origin on the same data give our maps, and its
    Calibration takes them. py4DSTEM needs NumPy < 2, so it cannot share this
    environment: set NAPARI_EMCAL_PY4DSTEM_PYTHON to an interpreter that has it."""
    python = os.environ.get("NAPARI_EMCAL_PY4DSTEM_PYTHON")
    if not python:
        pytest.skip("py4DSTEM needs NumPy < 2: set NAPARI_EMCAL_PY4DSTEM_PYTHON to run it")
    data, report = walking
    fit = report.descan
    np.save(tmp_path / "data.npy", data)
    exported = write_py4dstem_origin(tmp_path / "origin.npz", fit.matrix, fit.centre, SCAN)
    run = subprocess.run(
        [python, "-c", PY4DSTEM_ORIGIN, str(tmp_path / "data.npy"), "6", str(exported)],
        capture_output=True,
        text=True,
        check=True,
    )
    theirs = json.loads(run.stdout.strip().splitlines()[-1])
    qx0, qy0 = py4dstem_origin(fit.matrix, fit.centre, SCAN)
    np.testing.assert_allclose(theirs["qx0"], qx0, atol=0.05)
    np.testing.assert_allclose(theirs["qy0"], qy0, atol=0.05)
    np.testing.assert_allclose(theirs["at"], [qx0[3, 11], qy0[3, 11]])


def test_check_cli_writes_the_exports(tmp_path, capsys):
    data = diffraction_dataset(SCAN, DETECTOR, descan=DESCAN, radius=6, centre=CENTRE, seed=2)
    np.save(tmp_path / "walk.npy", data)
    libertem, py4dstem = tmp_path / "libertem.json", tmp_path / "origin.json"
    argv = ["check", str(tmp_path / "walk.npy"), "--libertem", str(libertem)]
    assert main([*argv, "--py4dstem", str(py4dstem), "--rotation", "30"]) == 0
    out = capsys.readouterr().out
    assert "two passes" in out and "walk, virtual imaging" in out
    document = json.loads(libertem.read_text())
    assert document["scan_rotation"] == 30.0 and len(document["regression"]) == 3
    np.testing.assert_allclose(
        document["regression"], libertem_regression(DESCAN, SCAN, 30.0), atol=0.02
    )
    assert document["standard_errors"]["regression"][1][0] < 0.003
    origin = json.loads(py4dstem.read_text())
    np.testing.assert_allclose(origin["descan_px_per_scan_px"], DESCAN, atol=0.005)
    # no disk, no descan: one line and exit code 2, nothing written
    np.save(tmp_path / "flat.npy", np.ones((4, 4, 16, 16), np.uint16))
    assert main(["check", str(tmp_path / "flat.npy"), "--py4dstem", str(tmp_path / "x")]) == 2
    assert "nothing to export" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_check_compares_its_descan_with_the_twins(walking, tmp_path, capsys):
    _, report = walking
    fit = report.descan
    agree = compare_descan(fit, DESCAN, np.full((2, 2), 1e-3))
    assert agree.split(": ")[1].startswith("agree")
    assert "DISAGREE" in compare_descan(fit, DESCAN + 0.02, np.full((2, 2), 1e-3))
    assert "not judged" in compare_descan(fit, DESCAN)


def test_check_cli_compares_with_the_twins_descan(tmp_path, capsys):
    from napari_emcal.overfocus import TwinParams

    data = diffraction_dataset(SCAN, DETECTOR, descan=DESCAN, radius=6, centre=CENTRE, seed=3)
    np.save(tmp_path / "walk.npy", data)
    twin = TwinParams(
        overfocus=1e-6, scan_pixel_size=1e-9, camera_length=0.15, detector_pixel_size=55e-6,
        cy=CENTRE[0], cx=CENTRE[1], scan_rotation=12.0, flip_y=False, descan=DESCAN,
    )  # fmt: skip
    twin.save(tmp_path / "twin.json", uncertainty={"descan": np.full((2, 2), 1e-3)})
    assert main(["check", str(tmp_path / "walk.npy"), "--twin", str(tmp_path / "twin.json")]) == 0
    out = capsys.readouterr().out
    assert "scan rotation 12° and flip False from" in out
    assert "descan differs by at most" in out and ": agree (" in out
    wrong = twin.replace(descan=DESCAN * 0.5)
    wrong.save(tmp_path / "wrong.json", uncertainty={"descan": np.full((2, 2), 1e-3)})
    assert main(["check", str(tmp_path / "walk.npy"), "--twin", str(tmp_path / "wrong.json")]) == 0
    assert "DISAGREE" in capsys.readouterr().out
