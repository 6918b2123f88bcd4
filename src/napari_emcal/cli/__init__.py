"""``emcal``: the calibrations without a viewer, for scripts and headless machines.

Each tool adds its own subcommand (``napari_emcal.<tool>.cli.add_parser``); this package
assembles them with its own thin commands (``info``, ``history``, ``report``, ``export``),
hands a tool the sample it runs on, and turns the errors a user can cause into one line and
exit code 2. What the subcommands share is in :mod:`napari_emcal.cli.kit`.
"""

from __future__ import annotations

import argparse
import sys
from functools import partial

from ..errors import EmcalError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    from ..dataset_check.cli import add_parser as add_check
    from ..diffraction.cli import add_parser as add_camera_length
    from ..dose.cli import add_parser as add_dose
    from ..grating.cli import add_parser as add_pixel_size
    from ..highdefocus.cli import add_parser as add_high_defocus
    from ..overfocus.cli import add_parser as add_overfocus
    from ..overfocus.live_cli import add_parser as add_live
    from ..overfocus.sample import overfocus_grating
    from ..serialem.cli import add_parser as add_serialem
    from .export import add_parser as add_export
    from .high_defocus import add_image_shift_row
    from .history import add_parser as add_history
    from .info import add_parser as add_info
    from .kit import EmcalParser
    from .report import add_parser as add_report

    parser = EmcalParser(prog="emcal", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (
        add_info,
        add_overfocus,
        add_pixel_size,
        add_high_defocus,
        add_camera_length,
        add_dose,
        partial(add_check, sample=overfocus_grating),  # a 4D sample: the overfocus tool's
        add_history,
        partial(add_export, sample=overfocus_grating),
        add_live,
        add_report,
        # the high-defocus image shift goes into the high-defocus tool's table
        partial(add_serialem, high_defocus_table=add_image_shift_row),
    ):
        add(sub)
    return parser


def main(argv=None) -> int:
    from .._files import protecting, refuse_overwrite
    from ..io.confine import allowed_folders
    from .kit import json_to_stdout

    args = build_parser().parse_args(argv)
    try:
        updated = UPDATED_IN_PLACE.get(args.command, ())
        inputs = _paths(args, [n for n in INPUTS if n not in updated])
        refuse_overwrite(_paths(args, OUTPUTS), inputs)
        # nor may a file the command writes into a folder replace one
        # data a dataset points at may come from the folders named with --allow-dir
        with (
            allowed_folders(getattr(args, "allow_dir", None) or ()),
            protecting(inputs),
            json_to_stdout(args),
        ):
            return args.func(args)
    except (EmcalError, OSError) as exc:
        print(f"emcal: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("emcal: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        log = _traceback_log()
        print(
            f"emcal: unexpected error: {type(exc).__name__}: {_one_line(exc)} (full traceback "
            f"in {log}; please report it)",
            file=sys.stderr,
        )
        return 1


#: Arguments that name files a command reads, and files it writes: an output that is an
#: input is refused before anything runs, and no file the command writes may replace one.
INPUTS = ("source", "files", "params", "table", "result", "near", "far", "calibration", "twin")
OUTPUTS = ("out", "json", "csv", "excel", "dose_text", "mdoc_out", "save", "lines")
#: Inputs a command updates on purpose (high-defocus and high-defocus-is add their row to
#: ``--table``).
UPDATED_IN_PLACE = {"high-defocus": ("table",), "high-defocus-is": ("table",)}


def _paths(args, names) -> list:
    found = []
    for name in names:
        value = getattr(args, name, None)
        values = value if isinstance(value, (list, tuple)) else [value]
        found.extend(v for v in values if isinstance(v, str) and v not in ("", "-", "sample"))
    return found


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:500] + ("…" if len(text) > 500 else "")


def _traceback_log() -> str:
    """Write the current exception's traceback to a file; its path."""
    import tempfile
    import traceback

    with tempfile.NamedTemporaryFile(
        "w", prefix="emcal-error-", suffix=".log", delete=False
    ) as log:
        traceback.print_exc(file=log)
    return log.name
