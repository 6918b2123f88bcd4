"""``emcal``: the calibrations without a viewer, for scripts and headless machines.

Each tool adds its own subcommand (``napari_emcal.<tool>.cli.add_parser``); this module
only assembles them and turns the errors a user can cause into one line and exit code 2.
"""

from __future__ import annotations

import argparse
import sys

from .errors import EmcalError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    from .dataset_check.cli import add_parser as add_check
    from .dose.cli import add_parser as add_dose
    from .grating.cli import add_parser as add_pixel_size
    from .highdefocus.cli import add_parser as add_high_defocus
    from .info import add_parser as add_info
    from .overfocus.cli import add_parser as add_overfocus

    parser = argparse.ArgumentParser(prog="emcal", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (add_info, add_overfocus, add_pixel_size, add_high_defocus, add_dose, add_check):
        add(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (EmcalError, OSError) as exc:
        print(f"emcal: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
