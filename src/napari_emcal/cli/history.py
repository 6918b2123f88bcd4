"""``emcal history``: list or export the calibration history."""

from __future__ import annotations

from ..history import TOOLS, History
from .kit import write_json

__all__ = ["add_parser"]


def cmd_history(args) -> int:
    entries = History().entries(args.tool, since=args.since)
    if args.json:
        write_json(args.json, [e.to_json_dict() for e in entries])
    for e in entries:
        values = ", ".join(f"{k} {_fmt(v)}" for k, v in e.values.items())
        sigma = ", ".join(f"{k} ± {_fmt(v)}" for k, v in e.uncertainty.items() if v is not None)
        setting = f" [{e.setting}]" if e.setting else ""
        print(f"{e.time}  {e.tool:<13}{setting} {values}" + (f" ({sigma})" if sigma else ""))
    if not entries:
        print(f"no calibrations in {History().path}" + (f" for {args.tool}" if args.tool else ""))
    return 0


def _fmt(value) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def add_parser(sub) -> None:
    p = sub.add_parser("history", help="the calibration history: list or export")
    p.add_argument("--tool", choices=TOOLS, help="only this tool's calibrations")
    p.add_argument("--since", metavar="DATE", help="only since this date (ISO 8601)")
    p.add_argument("--json", metavar="PATH", help="write the entries as JSON ('-': stdout)")
    p.set_defaults(func=cmd_history)
