"""``emcal export``: a saved calibration in the form another tool reads."""

from __future__ import annotations

__all__ = ["add_parser"]


def cmd_export_libertem(args) -> int:
    from .export import libertem_com, write_libertem_com
    from .overfocus import TwinParams

    params = TwinParams.load(args.params)
    values = libertem_com(params)
    if args.out:
        print(f"wrote {write_libertem_com(params, args.out)}")
    shown = (f"{k}={v!r}" if isinstance(v, bool) else f"{k}={v:.6g}" for k, v in values.items())
    print(", ".join(shown))
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="a saved calibration for another tool")
    which = p.add_subparsers(dest="target", required=True)
    q = which.add_parser(
        "libertem",
        help="LiberTEM centre-of-mass arguments (scan_rotation, flip_y, cy, cx) of a twin",
    )
    q.add_argument("params", help="twin parameters JSON (emcal overfocus --calibrate writes it)")
    q.add_argument("--out", metavar="PATH", help="also write them as JSON")
    q.set_defaults(func=cmd_export_libertem)
