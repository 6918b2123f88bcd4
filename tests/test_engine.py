"""Executors: the same results inline, on threads and on a dask.distributed cluster whose
workers are separate processes; cancellation."""

import numpy as np
import pytest

from napari_emcal.dataset_check import analyse, diffraction_dataset, disk, estimate_beam
from napari_emcal.engine import check_executor, libertem_dataset, make_context, run_udf
from napari_emcal.errors import Cancelled, InvalidParameterError
from napari_emcal.overfocus import TwinParams, compute
from napari_emcal.samples import overfocus_grating


@pytest.fixture(scope="module")
def check_input(tmp_path_factory):
    data = diffraction_dataset(
        (16, 20), (48, 48), radius=7, descan=((0.1, 0), (0, 0.05)), max_count=250, seed=1
    )
    path = tmp_path_factory.mktemp("engine") / "scan.npy"
    np.save(path, data)
    beam = estimate_beam(data)
    params = {
        "masks": {"BF": disk((48, 48), beam.centre, beam.radius)},
        "beam": beam,
        "max_count": 250,
        "scan_rotation": 30.0,
    }
    return data, path, params


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        yield cluster


def assert_same_pass(a, b):
    for name in a.images:
        np.testing.assert_array_equal(a.images[name], b.images[name])
    for field in (
        "total",
        "com_y",
        "com_x",
        "disk_cy",
        "disk_cx",
        "touches_edge",
        "saturated",
        "aperture_sum",
    ):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)


def test_check_executor():
    assert check_executor(None) == "local" and check_executor("threads") == "threads"
    assert check_executor("tcp://10.0.0.1:8786") == "tcp://10.0.0.1:8786"
    with pytest.raises(InvalidParameterError, match="executor must be one of"):
        check_executor("gpu please")


def test_analyse_inline_threads_and_a_path(check_input):
    data, path, params = check_input
    local = analyse(data, **params)
    assert_same_pass(analyse(data, executor="inline", **params), local)
    assert_same_pass(analyse(np.load(path, mmap_mode="r"), executor="threads", **params), local)
    assert_same_pass(analyse(str(path), **params), local)  # a path: LiberTEM reads it


def test_cluster_gives_identical_results(check_input, cluster):
    data, path, params = check_input
    inline = analyse(str(path), executor="inline", **params)
    assert_same_pass(analyse(str(path), executor=cluster.scheduler_address, **params), inline)
    sample, metadata = overfocus_grating()
    sample_path = path.parent / "sample.npy"
    np.save(sample_path, sample)
    twin = TwinParams.from_json_dict(metadata["ground_truth"])
    reference = compute(sample, twin)
    on_cluster = compute(str(sample_path), twin, executor=cluster.scheduler_address)
    for name, image in reference.items():
        np.testing.assert_allclose(on_cluster[name], image, rtol=1e-12, atol=1e-9, err_msg=name)


def test_a_cluster_run_can_be_cancelled(check_input, cluster):
    data, path, params = check_input
    from napari_emcal.dataset_check.analysis import DatasetPass
    from napari_emcal.engine import PassUDF

    ctx = make_context(cluster.scheduler_address)
    try:
        dataset = libertem_dataset(ctx, str(path), num_partitions=8)
        seen = []

        def progress(fraction):
            seen.append(fraction)
            raise Cancelled

        with pytest.raises(Cancelled):
            run_udf(ctx, dataset, PassUDF(DatasetPass(**params)), progress)
        assert len(seen) == 1 and seen[0] < 1.0  # stopped after the first partition
        # the cluster keeps working after the cancellation
        udf = PassUDF(DatasetPass(**params))
        again = udf.pass_result(run_udf(ctx, dataset, udf), dataset.shape.nav, dataset.shape.sig)
        assert_same_pass(again, analyse(data, **params))
    finally:
        ctx.close()


def test_unreachable_scheduler_is_a_clear_error():
    with pytest.raises(
        InvalidParameterError, match="cannot reach the dask scheduler at tcp://127.0.0.1:9"
    ):
        make_context("tcp://127.0.0.1:9", timeout_s=2)


def test_cli_runs_on_the_cluster(check_input, cluster, tmp_path, capsys):
    import json

    from napari_emcal.cli import main

    data, path, params = check_input
    local, remote = tmp_path / "local.json", tmp_path / "remote.json"
    assert main(["check", str(path), "--json", str(local)]) == 0
    assert (
        main(["check", str(path), "--scheduler", cluster.scheduler_address, "--json", str(remote)])
        == 0
    )
    assert json.loads(local.read_text()) == json.loads(remote.read_text())
    assert main(["overfocus", "sample", "--scheduler", cluster.scheduler_address]) == 0
    assert "one pass" in capsys.readouterr().out
    assert main(["check", str(path), "--scheduler", "http://nowhere"]) == 2
    assert "executor must be one of" in capsys.readouterr().err
