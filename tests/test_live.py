"""Live processing from a Merlin stream: LiberTEM-live's simulator replays a real recording
over TCP exactly as the detector would (issue 23)."""

import numpy as np
import pytest

from napari_emcal.cli import main
from napari_emcal.engine.live import LiveError, LiveSource, acquisitions
from napari_emcal.errors import InvalidParameterError
from napari_emcal.io.readers import open_4d
from napari_emcal.overfocus import TwinParams, compute
from napari_emcal.overfocus.images import OverfocusPass

from .conftest import free_ports
from .merlin_files import REPLAY_PARAMS

pytest.importorskip("libertem_live", reason="live processing needs LiberTEM-live")

PARAMS = TwinParams(**REPLAY_PARAMS)


def test_an_acquisition_gives_the_file_s_images_and_frames(merlin_sim):
    data_port, control_port, header = merlin_sim
    source = LiveSource("merlin", "127.0.0.1", data_port, control_port, (4, 2))
    (acquired,) = list(acquisitions(source, [OverfocusPass(PARAMS)], timeout=20))
    recorded = np.asarray(open_4d(header, scan_shape=(4, 2)).data)
    np.testing.assert_array_equal(acquired.frames, recorded)  # kept for a calibration
    expected = compute(recorded, PARAMS)
    for name, image in acquired.results[0].items():
        np.testing.assert_allclose(image, expected[name], rtol=1e-12, err_msg=name)


def test_cli_live_overfocus_writes_images_and_the_acquisition(merlin_sim, tmp_path, capsys):
    data_port, control_port, header = merlin_sim
    PARAMS.save(tmp_path / "p.json")
    code = main(
        [
            "live",
            "overfocus",
            "--merlin",
            f"127.0.0.1:{data_port}",
            "--control-port",
            str(control_port),
            "--scan-shape",
            "4",
            "2",
            "--params",
            str(tmp_path / "p.json"),
            "--out",
            str(tmp_path / "out"),
            "--save",
            str(tmp_path / "scan.npy"),
            "--timeout",
            "20",
        ]
    )
    assert code == 0
    assert "acquisition 1: 8 frames of 256 x 256" in capsys.readouterr().out
    assert (tmp_path / "out" / "shifted_sum.tif").is_file()
    saved = np.load(tmp_path / "scan.npy")
    assert saved.shape == (4, 2, 256, 256)  # read back as any .npy dataset
    assert open_4d(tmp_path / "scan.npy").data.shape == (4, 2, 256, 256)


def test_no_detector_is_a_clear_error(capsys):
    (port,) = free_ports(1)
    source = LiveSource("merlin", "127.0.0.1", port, port, (4, 2))
    with pytest.raises(LiveError, match="nothing answers on the control port"):
        list(acquisitions(source, [OverfocusPass(PARAMS)], timeout=1))
    with pytest.raises(InvalidParameterError):
        LiveSource("eiger9000")
    with pytest.raises(InvalidParameterError, match="DECTRIS detector needs"):
        LiveSource("dectris")  # its ports depend on the set-up: never a guessed default
    assert (
        main(
            [
                "live",
                "overfocus",
                "--merlin",
                "127.0.0.1",
                "--scan-shape",
                "4",
                "2",
                "--params",
                "p.json",
                "--free",
                "cy",
            ]
        )
        == 2
    )  # --free without --calibrate


def test_a_hostile_peer_is_a_clear_error(hostile_peer, tmp_path, capfd):
    """A peer that sends what no detector sends, or closes at once: a LiveError from the
    API, one line and exit status 2 from the CLI, never "please report it"."""
    import time

    data_port, control_port, _ = hostile_peer
    source = LiveSource("merlin", "127.0.0.1", data_port, control_port, (4, 2))
    with pytest.raises(LiveError, match="is this a merlin detector's data port"):
        list(acquisitions(source, [OverfocusPass(PARAMS)], timeout=3))
    PARAMS.save(tmp_path / "p.json")
    capfd.readouterr()
    argv = ["live", "overfocus", "--merlin", f"127.0.0.1:{data_port}"]
    argv += ["--control-port", str(control_port), "--scan-shape", "4", "2"]
    argv += ["--params", str(tmp_path / "p.json"), "--timeout", "3", "--out", str(tmp_path / "o")]
    start = time.perf_counter()
    code = main(argv)
    elapsed = time.perf_counter() - start
    err = capfd.readouterr().err.strip()  # the receiver's own log lines included
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "unexpected" not in err, err
    assert err.startswith("emcal: error: merlin at 127.0.0.1"), err
    assert "is this a merlin detector's data port?" in err, err
    assert elapsed < 20
    assert not (tmp_path / "o").exists()
