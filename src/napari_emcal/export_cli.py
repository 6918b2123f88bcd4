"""``emcal export``: a saved calibration in the form another tool reads."""

from __future__ import annotations

from ._cli import dataset_arguments

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


def cmd_export_hspy(args) -> int:
    from ._cli import load_dataset
    from .export import write_stem_hspy
    from .overfocus import TwinParams

    data, metadata, notes = load_dataset(args.source, args.scan_shape)
    for note in notes:
        print(f"note: {note}")
    params = TwinParams.load(args.params) if args.params else None
    title = str(metadata.get("source", args.source))
    path = write_stem_hspy(args.out, data, params, metadata, title=title)
    sy, sx, dy, dx = data.shape
    print(
        f"wrote {path}: {sy} x {sx} scan of {dy} x {dx} frames, axes from "
        + ("the twin" if params is not None else "the file's metadata")
    )
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
    h = which.add_parser(
        "hspy",
        help="a 4D dataset as a HyperSpy/pyxem signal with calibrated scan (nm) and "
        "detector (mrad) axes",
    )
    dataset_arguments(h)
    h.add_argument("--params", metavar="TWIN.json", help="calibrated twin: lengths, beam centre")
    h.add_argument("--out", metavar="PATH.hspy", required=True, help="the file to write")
    h.set_defaults(func=cmd_export_hspy)
