import inspect
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

#: Real instrument files beside the checkout (absent in a user's clone).
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"
FETCH = "python -m napari_emcal.testing.fetch"


def real_data_folders() -> list[Path]:
    """Where the real test files are looked for: the folder ``$EMCAL_REAL_DATA`` names
    alone when it is set (``EMCAL_REAL_DATA=/nonexistent`` runs the suite without them),
    else ``shared/data/real`` beside the checkout, then the folder ``FETCH`` fills."""
    if os.environ.get("EMCAL_REAL_DATA"):
        return [Path(os.environ["EMCAL_REAL_DATA"])]
    from napari_emcal.testing.fetch import cache_dir

    return [SHARED_DATA, cache_dir()]


def real_file(relative: str) -> Path:
    """Path of a real test file, or skip the test saying which file and how to get it."""
    folders = real_data_folders()
    for folder in folders:
        if (folder / relative).exists():
            return folder / relative
    where = ", ".join(str(f) for f in folders)
    pytest.skip(f"real data file {relative} not in {where}: `{FETCH}` downloads it")


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # napari's make_napari_viewer fixture reads item.rep_call to decide on leak checks
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
    if report.when == "setup" and not report.passed:
        # a fixture skipped (a real file is absent) or failed: the test body never runs, and
        # the viewer fixture's teardown, which reads rep_call, gets the setup's report
        item.rep_call = report


def _reads_real_files(item) -> bool:
    """Whether a test, a fixture it uses or a module function it calls reads a real file."""
    functions = [getattr(item, "function", None)]
    fixtures = getattr(item, "_fixtureinfo", None)
    for definitions in fixtures.name2fixturedefs.values() if fixtures else ():
        functions += [d.func for d in definitions]
    sources = []
    for function in functions:
        code = getattr(function, "__code__", None)
        if code is None or "tests" not in Path(code.co_filename).parts:
            continue
        sources.append(inspect.getsource(function))
        for name in code.co_names:  # the module's helpers it calls
            helper = function.__globals__.get(name)
            if inspect.isfunction(helper) and helper.__module__ == function.__module__:
                sources.append(inspect.getsource(helper))
    return any("real_file(" in source for source in sources)


def pytest_collection_modifyitems(config, items):
    # `-m real_data` selects them: .ci/run's guard runs them with the files hidden
    for item in items:
        if _reads_real_files(item):
            item.add_marker(pytest.mark.real_data)


@pytest.fixture(autouse=True)
def _autosave_in_tmp(tmp_path, monkeypatch):
    """Widgets that autosave write into the test's folder, never the user's data folder."""
    monkeypatch.setenv("NAPARI_EMCAL_AUTOSAVE", str(tmp_path / "autosave" / "dose_table.json"))
    # and the calibration history too
    monkeypatch.setenv("NAPARI_EMCAL_HISTORY", str(tmp_path / "history.sqlite"))


@pytest.fixture(autouse=True)
def _settings_in_tmp(tmp_path, monkeypatch):
    """Persistent settings go to the test's folder, never the user's configuration."""
    monkeypatch.setenv("NAPARI_EMCAL_SETTINGS", str(tmp_path / "settings" / "settings.json"))


def free_ports(n):
    """``n`` TCP ports free on the loopback address now."""
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def start_merlin_simulator(header: Path, nav_shape, dwell_us: int | None = None):
    """LiberTEM-live's Merlin simulator replaying the recording ``header`` on the loopback
    address: (process, data port, control port), once it listens."""
    pytest.importorskip("libertem_live", reason="live processing needs LiberTEM-live")
    simulator = shutil.which("libertem-live-mib-sim") or str(
        Path(sys.executable).with_name("libertem-live-mib-sim")
    )
    data, control, trigger = free_ports(3)
    command = [simulator, str(header), "--nav-shape", *(str(n) for n in nav_shape)]
    command += ["--host", "127.0.0.1", "--data-port", str(data)]
    command += ["--control-port", str(control), "--trigger-port", str(trigger)]
    if dwell_us:
        command += ["--dwelltime", str(int(dwell_us))]
    # its own process group: the simulator sends from child processes, which must go too
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # until it listens
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", control)) == 0:
                return process, data, control
        time.sleep(0.2)
    stop_simulator(process)
    pytest.fail("the Merlin simulator did not start")


def stop_simulator(process) -> None:
    """Kill a simulator and every process it started."""
    import signal

    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=10)


@pytest.fixture
def merlin_sim():
    """The simulator replaying the real 4 x 2 recording: (data port, control port, .hdr)."""
    header = real_file("4d/merlin_4x2/001_4x2_6bit.hdr")
    process, data, control = start_merlin_simulator(header, (4, 2))
    yield data, control, header
    stop_simulator(process)


#: What a hostile live peer does on each connection: bytes of no detector's protocol, or
#: closing at once.
PEER_MODES = ("garbage", "close")


class HostilePeer:
    """A thread serving ``mode`` on two loopback ports (data, control): each connection
    gets garbage bytes then is closed (``garbage``), or is closed at once (``close``)."""

    def __init__(self, mode: str):
        import threading

        self.mode = mode
        self.servers = []
        for _ in range(2):
            server = socket.socket()
            server.bind(("127.0.0.1", 0))
            server.listen(16)
            server.settimeout(0.2)
            self.servers.append(server)
        self.ports = tuple(s.getsockname()[1] for s in self.servers)
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._serve, args=(s,), daemon=True) for s in self.servers
        ]
        for thread in self._threads:
            thread.start()

    def _serve(self, server) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = server.accept()
            except (TimeoutError, OSError):
                continue
            with connection:
                if self.mode == "garbage":
                    try:
                        connection.sendall(b"\x00\xffnot MPX, nor any header\r\n" * 400)
                    except OSError:
                        pass

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        for server in self.servers:
            server.close()


@pytest.fixture(params=PEER_MODES)
def hostile_peer(request):
    """A live peer that sends garbage or closes at once: (data port, control port, mode)."""
    peer = HostilePeer(request.param)
    yield (*peer.ports, peer.mode)
    peer.close()
