"""What the tools' subcommands share: opening a 4D dataset (or a sample, whose loader the
command is handed), choosing where a pass runs, writing JSON. Each tool's ``cli.py`` adds its
own subcommand. This module imports no tool."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys

from ..errors import InvalidParameterError

__all__ = [
    "EmcalParser",
    "dataset_arguments",
    "positive_float",
    "positive_int",
    "executor",
    "executor_arguments",
    "load_dataset",
    "pass_source",
    "write_json",
]


class EmcalParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (``emcal: error: ...``), exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def positive_float(text: str) -> float:
    """A finite number > 0 (argparse type)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text} must be a finite number above 0")
    return value


def positive_int(text: str) -> int:
    """A whole number > 0 (argparse type)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be a whole number above 0")
    return value


def load_dataset(source: str, scan_shape, sample=None):
    """(data, metadata, notes) for a path, or for the name ``sample`` what ``sample()`` (the
    command's sample loader, :func:`dataset_arguments`) returns."""
    if source == "sample":
        if sample is None:
            raise InvalidParameterError("this command has no sample dataset: give a file")
        data, metadata = sample()
        return data, metadata, []
    from ..io.readers import open_4d

    ds = open_4d(source, scan_shape=scan_shape)
    return ds.data, ds.metadata, ds.notes


def dataset_arguments(p, sample=None) -> None:
    """The 4D dataset a subcommand reads: ``source`` and ``--scan-shape``; ``sample`` (a
    function returning ``(data, metadata)``) loads the dataset named ``sample``, handed to
    the command as ``args.load_sample``."""
    p.set_defaults(load_sample=sample)
    p.add_argument("source", help="4D STEM file, or 'sample' for the simulated grating")
    p.add_argument(
        "--scan-shape",
        type=positive_int,
        nargs=2,
        metavar=("NY", "NX"),
        help="arrange the frames into this scan",
    )
    allow_dir_argument(p)


def allow_dir_argument(p) -> None:
    """``--allow-dir DIR`` (repeatable): a folder besides the dataset's own from which the
    data it points at may be read (:func:`napari_emcal.io.confine.allowed_folders`; the
    command runs inside it, see :func:`napari_emcal.cli.main`)."""
    p.add_argument(
        "--allow-dir",
        metavar="DIR",
        action="append",
        default=[],
        help="a folder besides the dataset's own from which the data it points at (HDF5 "
        "external storage, virtual or linked files, an EMPAD raw file) may be read; "
        "regular files only; repeatable",
    )


def executor_arguments(p) -> None:
    """``--executor`` and ``--scheduler`` for a subcommand that runs a pass."""
    p.add_argument(
        "--executor",
        choices=["local", "inline", "threads"],
        default="local",
        help="where the pass runs: this process (default), LiberTEM inline or LiberTEM threads",
    )
    p.add_argument(
        "--scheduler",
        metavar="tcp://HOST:PORT",
        help="run the pass on an existing dask.distributed cluster through "
        "LiberTEM (the workers must be able to read the file)",
    )


def executor(args) -> str:
    """The validated executor the arguments ask for."""
    from ..engine import check_executor

    if args.scheduler and args.executor != "local":
        raise InvalidParameterError("give --executor or --scheduler, not both")
    return check_executor(args.scheduler or args.executor)


def pass_source(args, data, metadata, executor: str):
    """What the pass reads (:func:`napari_emcal.engine.pass_source`): on a LiberTEM executor
    the file itself when it holds the frames as read here (no --scan-shape, none guessed),
    else the array already opened here."""
    from ..engine import pass_source as engine_pass_source

    path = None if args.source == "sample" else args.source
    as_read = not args.scan_shape and not metadata.get("scan_shape_guessed")
    return engine_pass_source(data, path, executor, as_read=as_read)


#: Where ``write_json("-", …)`` writes while :func:`json_to_stdout` holds standard output.
_json_stdout = None


@contextlib.contextmanager
def json_to_stdout(args):
    """While a command runs whose ``--json`` is ``-``: standard output carries its JSON alone
    (:func:`write_json`), and everything else it prints goes to standard error, so that the
    output can be piped to ``jq`` or ``python -m json.tool``."""
    global _json_stdout
    if getattr(args, "json", None) != "-":
        yield
        return
    _json_stdout = sys.stdout
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        _json_stdout = None


def write_json(path, document) -> None:
    """Write ``document`` as indented JSON, making the folder ('-': standard output)."""
    if str(path) == "-":
        print(json.dumps(document, indent=2), file=_json_stdout or sys.stdout)
        return
    from .._files import atomic_write_text

    atomic_write_text(path, json.dumps(document, indent=2))


def history_arguments(p) -> None:
    """``--no-history``: else the calibration this command writes is kept in the history."""
    p.add_argument(
        "--no-history",
        action="store_true",
        help="do not record this calibration in the calibration history "
        "($NAPARI_EMCAL_HISTORY or the user data folder)",
    )


def record_history(args, tool: str, values: dict, uncertainty: dict, **where) -> None:
    """Record a calibration the CLI wrote (unless --no-history), and print any drift
    from the previous one at the same setting."""
    if getattr(args, "no_history", False):
        return
    from ..history import History

    history = History()
    _, warnings = history.keep(tool, values, uncertainty, **where)
    for warning in warnings:
        print(f"drift: {warning}")
    print(f"recorded in the calibration history {history.path}")
