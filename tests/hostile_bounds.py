"""Run ``emcal`` on hostile inputs in this process, one after the other, under an address-
space limit of what the imports took plus 1 GiB, and report for each its exit status, its
seconds (wall and CPU) and the peak resident memory so far, as JSON on stdout (the last
line)::

    python -m tests.hostile_bounds '[["info", "/dev/zero"], ...]'

``tests/test_hostile_inputs.py`` runs it in a subprocess (so that a case that grew without
bound would fail there, not take the machine's memory), with a timeout.
"""

from __future__ import annotations

import contextlib
import io
import json
import resource
import sys
import time

#: Memory a hostile input may make a command take beyond what its imports took (bytes).
BOUND_BYTES = 2**30


def _virtual_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize in /proc/self/status")


def _peak_resident_bytes() -> int:
    """This process's peak resident memory since :func:`_reset_peak` (``VmHWM``): Linux
    keeps ``ru_maxrss`` across ``execve``, so a process started by a large pytest would
    report pytest's own peak."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux


def _reset_peak() -> None:
    """Start the peak resident memory afresh (Linux >= 4.0; else it stays as it was)."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        pass


def run(cases: list[list[str]]) -> list[dict]:
    from napari_emcal.cli import build_parser, main

    build_parser()  # every command's module imported: its memory is the baseline
    # the readers the cases reach, imported before the limit, as a first command would
    import h5py  # noqa: F401
    import mrcfile  # noqa: F401
    import pandas  # noqa: F401

    _reset_peak()
    baseline = _peak_resident_bytes()
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = _virtual_bytes() + BOUND_BYTES
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    results = []
    for argv in cases:
        err, out = io.StringIO(), io.StringIO()
        start, cpu = time.perf_counter(), time.process_time()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            try:
                code = main(argv)
            except MemoryError:
                code = "MemoryError"
        results.append(
            {
                "argv": argv,
                "code": code,
                "seconds": time.perf_counter() - start,
                "cpu_seconds": time.process_time() - cpu,
                "peak_bytes": _peak_resident_bytes(),
                "stderr": err.getvalue(),
            }
        )
    return [{"baseline_bytes": baseline}, *results]


if __name__ == "__main__":
    print(json.dumps(run(json.loads(sys.argv[1]))))
