"""Passes over acquisitions as a detector delivers them, through LiberTEM-live.

A :class:`LiveSource` says where the detector (or its simulator) is; :func:`acquisitions`
waits for each acquisition, runs the given passes on its frames as they arrive (LiberTEM-
live's inline executor, in the calling thread: a napari worker or the CLI) and yields the
results, with the frames kept so that a calibration can run on them afterwards without
acquiring again. The passes are the same :class:`~napari_emcal.engine.passes.FramePass`
objects that run on files. LiberTEM-live is imported only here, only when used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from ..errors import Cancelled, EmcalError, InvalidDataError, InvalidParameterError
from .passes import Buffer, FramePass

__all__ = ["DETECTORS", "Acquired", "KeepFrames", "LiveError", "LiveSource", "acquisitions"]

#: Detectors and their default (data, control) ports: LiberTEM-live's for the Merlin; a
#: DECTRIS system's ports depend on its set-up and must be given.
DETECTORS = {"merlin": (6342, 6341), "dectris": (None, None)}
#: Largest acquisition whose frames are kept (bytes): the whole scan can be recomputed
#: and calibrated without acquiring again.
KEEP_BYTES = 4 * 2**30


class LiveError(EmcalError):
    """No acquisition came, or the detector could not be reached."""


@dataclass(frozen=True)
class LiveSource:
    """Where the detector is: ``detector`` ("merlin" or "dectris"), ``host``, ports (the
    detector's defaults when None) and the scan shape of each acquisition."""

    detector: str = "merlin"
    host: str = "127.0.0.1"
    data_port: int | None = None
    control_port: int | None = None
    scan_shape: tuple[int, int] | None = None

    def __post_init__(self):
        if self.detector not in DETECTORS:
            raise InvalidParameterError(
                f"detector must be one of {', '.join(DETECTORS)}; got {self.detector!r}"
            )
        for name in ("data_port", "control_port"):
            port = getattr(self, name)
            if port is not None and not (0 < int(port) < 65536):
                raise InvalidParameterError(f"{name} must be 1..65535; got {port}")
        if self.detector == "dectris" and (self.data_port is None or self.control_port is None):
            raise InvalidParameterError(
                "a DECTRIS detector needs its data (zmq) and control (API) ports"
            )
        if self.scan_shape is not None and (
            len(self.scan_shape) != 2 or min(int(v) for v in self.scan_shape) <= 0
        ):
            raise InvalidParameterError(
                f"scan_shape must be two positive ints; got {self.scan_shape}"
            )

    @property
    def ports(self) -> tuple[int, int]:
        data, control = DETECTORS[self.detector]
        return (self.data_port or data, self.control_port or control)

    def describe(self) -> str:
        data, control = self.ports
        return f"{self.detector} at {self.host} (data {data}, control {control})"


class KeepFrames(FramePass):
    """A pass that keeps every frame (scan-shaped), to calibrate on afterwards."""

    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)

    def buffers(self, scan_shape, detector_shape):
        return {"frames": Buffer("nav", tuple(detector_shape), self.dtype)}

    def prepare(self, scan_shape, detector_shape):
        return None

    def process(self, buffers, frames, scan_y, scan_x, task):
        buffers["frames"][...] = frames.reshape(buffers["frames"].shape)

    def finish(self, buffers, scan_shape, detector_shape, task):
        return buffers["frames"]


@dataclass
class Acquired:
    """One acquisition: each pass's result, the frames (or None when too large to keep)
    and its scan shape."""

    results: list
    frames: np.ndarray | None
    scan_shape: tuple[int, int]
    seconds: float


def _reachable(host: str, port: int, timeout: float) -> bool:
    import socket

    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _connect(ctx, source: LiveSource, timeout: float):
    data, control = source.ports
    # LiberTEM-live retries a refused connection for ever: say so at once instead
    for name, port in (("control", control), ("data", data)):
        if not _reachable(source.host, port, min(timeout, 5.0)):
            raise LiveError(
                f"cannot connect to {source.describe()}: nothing answers on the {name} port "
                f"{port} (is the detector software, or libertem-live-mib-sim, running?)"
            )
    builder = ctx.make_connection(source.detector)
    try:
        if source.detector == "merlin":
            return builder.open(
                data_host=source.host, data_port=data, api_host=source.host, api_port=control
            )
        return builder.open(
            api_host=source.host, api_port=control, data_host=source.host, data_port=data
        )
    except Exception as exc:  # the detectors' libraries raise socket and protocol errors
        raise LiveError(f"cannot connect to {source.describe()}: {exc}") from exc


@contextmanager
def _peer_errors(source: LiveSource, when: str) -> Iterator[None]:
    """The receivers' own errors (a peer that sends what is no detector's protocol, or
    closes at once) as a :class:`LiveError` naming the peer; ours pass through."""
    try:
        yield
    except (Cancelled, EmcalError):
        raise
    except Exception as exc:  # socket, protocol and parse errors of the detectors' libraries
        text = " ".join(str(exc).split()) or type(exc).__name__
        raise LiveError(
            f"{source.describe()} {when}: {text[:300]} (is this a {source.detector} "
            "detector's data port?)"
        ) from exc


def acquisitions(
    source: LiveSource,
    passes: Sequence[FramePass],
    *,
    count: int = 1,
    timeout: float = 30.0,
    keep_frames: bool = True,
    cancelled: Callable[[], bool] | None = None,
    arrived: Callable[[np.ndarray], None] | None = None,
) -> Iterator[Acquired]:
    """Yield the results of ``passes`` for each of ``count`` acquisitions.

    With ``arrived``, the kept frames are also handed over while they arrive: after each
    part of an acquisition, ``arrived(frames, received)`` gets the scan-shaped array, with
    the frames still to come zero, and how many have arrived (in scan order), so that a
    viewer can fill in the scan as it is recorded.

    Raises
    ------
    LiveError
        The detector cannot be reached, or no acquisition started within ``timeout`` s.
    Cancelled
        ``cancelled()`` turned true between acquisitions.
    """
    import os
    import time

    # the Merlin receiver logs each broken stream on stderr itself; the LiveError raised
    # here says the same in one line (set LIBERTEM_QD_LOG_LEVEL to see its log)
    os.environ.setdefault("LIBERTEM_QD_LOG_LEVEL", "off")
    try:
        from libertem.executor.inline import InlineJobExecutor
        from libertem_live.api import LiveContext
    except ImportError as exc:  # an optional dependency
        raise LiveError(
            "live processing needs LiberTEM-live: pip install 'napari-emcal[live]'"
        ) from exc
    from .udf import PassUDF

    if int(count) < 1:
        raise InvalidParameterError(f"count must be at least 1; got {count}")
    ctx = LiveContext(executor=InlineJobExecutor())
    try:
        with _connect(ctx, source, float(timeout)) as conn:
            for _ in range(int(count)):
                if cancelled is not None and cancelled():
                    raise Cancelled
                with _peer_errors(source, "while waiting for an acquisition"):
                    pending = conn.wait_for_acquisition(float(timeout))
                if pending is None:
                    raise LiveError(
                        f"no acquisition started within {timeout:g} s on {source.describe()}"
                    )
                t0 = time.perf_counter()
                with _peer_errors(source, "when the acquisition started"):
                    aq = ctx.make_acquisition(
                        conn=conn, pending_aq=pending, nav_shape=source.scan_shape
                    )
                shape = tuple(aq.shape)
                if len(shape) != 4:
                    raise InvalidDataError(
                        f"the acquisition has shape {shape}: give the scan shape (ny, nx)"
                    )
                scan, detector = shape[:2], shape[2:]
                udfs = [PassUDF(p) for p in passes]
                keep = keep_frames and np.prod(shape) * aq.dtype.itemsize <= KEEP_BYTES
                if keep:
                    udfs.append(PassUDF(KeepFrames(aq.dtype)))
                buffers, received, expected = None, 0, int(np.prod(scan))
                try:
                    for part in ctx.run_udf_iter(dataset=aq, udf=udfs):
                        buffers = part.buffers
                        received = int(np.count_nonzero(np.asarray(part.damage.data)))
                        if arrived is not None and keep:
                            frames = np.asarray(buffers[-1]["frames"]).reshape(shape)
                            arrived(frames, received)
                except (Cancelled, EmcalError):
                    raise
                except Exception as exc:  # the receivers raise their own connection errors
                    raise LiveError(
                        f"the connection to {source.describe()} broke off after {received} "
                        f"of {expected} frames ({exc}); the frames received are kept where "
                        "they were shown"
                    ) from exc
                if buffers is None or received < expected:
                    # LiberTEM-live ends an acquisition whose stream broke off as if it
                    # were complete: never pass the missing frames off as zeros
                    raise LiveError(
                        f"the acquisition ended after {received} of {expected} frames from "
                        f"{source.describe()}: the connection was lost or frames were "
                        "dropped (the frames received are kept where they were shown)"
                    )
                results = [u.pass_result(b, scan, detector) for u, b in zip(udfs, buffers)]
                frames = results.pop() if keep else None
                yield Acquired(results, frames, scan, time.perf_counter() - t0)
    finally:
        ctx.close()
