"""``emcal export``: a saved calibration in the form another tool reads."""

from __future__ import annotations

from .._files import atomic_write_text
from ..errors import InvalidParameterError
from .kit import dataset_arguments

__all__ = ["add_parser"]


def cmd_export_libertem(args) -> int:
    from ..overfocus import TwinParams
    from ..overfocus.export import libertem_com_text, write_libertem_com

    params = TwinParams.load(args.params)
    if args.out:
        print(f"wrote {write_libertem_com(params, args.out)}")
    print(libertem_com_text(params))
    return 0


def cmd_export_hspy(args) -> int:
    from ..overfocus import TwinParams
    from ..overfocus.export import write_stem_hspy
    from .kit import load_dataset

    data, metadata, notes = load_dataset(args.source, args.scan_shape, args.load_sample)
    for note in notes:
        print(f"note: {note}")
    from ..overfocus.twin import load_uncertainty

    params = TwinParams.load(args.params) if args.params else None
    uncertainty = load_uncertainty(args.params) if args.params else None
    title = str(metadata.get("source", args.source))
    path = write_stem_hspy(args.out, data, params, metadata, title=title, uncertainty=uncertainty)
    sy, sx, dy, dx = data.shape
    print(
        f"wrote {path}: {sy} x {sx} scan of {dy} x {dx} frames, axes from "
        + ("the twin" if params is not None else "the file's metadata")
    )
    return 0


def cmd_export_py4dstem(args) -> int:
    from ..overfocus import TwinParams
    from ..overfocus.export import py4dstem_calibration, write_py4dstem_calibration
    from ..overfocus.twin import load_uncertainty

    params = TwinParams.load(args.params)
    if args.out:
        written = write_py4dstem_calibration(params, args.out, load_uncertainty(args.params))
        print(f"wrote {written}")
    for name, value in py4dstem_calibration(params).items():
        print(f"{name:20s}{value if isinstance(value, (bool, str)) else f'{value:.6g}'}")
    return 0


def _write_or_print(lines, out) -> None:
    text = "\n".join(lines) + "\n"
    if out:
        atomic_write_text(out, text)
        print(f"wrote {out} ({len(lines)} lines)")
    else:
        print(text, end="")


def _mag_indices(pairs) -> dict:
    out = {}
    for pair in pairs or ():
        mag, _, index = pair.partition("=")
        try:
            out[float(mag)] = int(index)
        except ValueError:
            raise InvalidParameterError(
                f"--mag-index takes MAGNIFICATION=INDEX (e.g. 29000=27); got {pair!r}"
            ) from None
    return out


def cmd_export_serialem_pixel(args) -> int:
    from ..grating import PixelSizeTable
    from ..grating.export import serialem_pixel_lines

    table = PixelSizeTable.from_csv(args.table)
    lines, skipped = serialem_pixel_lines(table, _mag_indices(args.mag_index))
    for note in skipped:
        print(f"note: left out {note}")
    _write_or_print(lines, args.out)
    return 0


def cmd_export_serialem_high_defocus(args) -> int:
    from ..highdefocus import HighDefocusTable
    from ..highdefocus.export import serialem_high_defocus_lines

    lines, skipped = serialem_high_defocus_lines(HighDefocusTable.from_csv(args.table))
    for note in skipped:
        print(f"note: left out {note}")
    _write_or_print(lines, args.out)
    return 0


def cmd_export_motioncor2(args) -> int:
    from ..grating.export import distortion_of_file

    distortion = distortion_of_file(args.result)
    if distortion is None:
        raise InvalidParameterError(f"{args.result} holds no lattice: nothing to export.")
    print(
        f"stretch {distortion.distortion_percent:.2f} % along {distortion.angle_deg:.1f}° "
        f"(degrees from +x towards +y of the stored image), mean pixel "
        f"{distortion.pixel_size_nm:.5g} nm"
    )
    if not distortion.significant:
        print("note: the anisotropy is within noise: no correction is needed")
    print(distortion.motioncor2_argument())
    return 0


def add_parser(sub, sample=None) -> None:
    """``emcal export``; ``sample`` loads the 4D dataset named 'sample' for ``export hspy``."""
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
    dataset_arguments(h, sample)
    h.add_argument("--params", metavar="TWIN.json", help="calibrated twin: lengths, beam centre")
    h.add_argument("--out", metavar="PATH.hspy", required=True, help="the file to write")
    h.set_defaults(func=cmd_export_hspy)
    q = which.add_parser(
        "py4dstem",
        help="py4DSTEM calibration values (QR_rotation_degrees, QR_flip, origin, pixel "
        "sizes) of a twin",
    )
    q.add_argument("params", help="twin parameters JSON (emcal overfocus --calibrate writes it)")
    q.add_argument("--out", metavar="PATH", help="also write them as JSON")
    q.set_defaults(func=cmd_export_py4dstem)
    q = which.add_parser(
        "serialem-pixel",
        help="a pixel-size table as SerialEM RotationAndPixel lines (camera properties)",
    )
    q.add_argument("table", help="pixel-size table CSV (the grating dock's Export CSV)")
    q.add_argument(
        "--mag-index",
        action="append",
        metavar="MAG=INDEX",
        help="SerialEM's mag index of a nominal magnification of the table (repeat)",
    )
    q.add_argument("--out", metavar="PATH", help="write the lines here (else print them)")
    q.set_defaults(func=cmd_export_serialem_pixel)
    q = which.add_parser(
        "serialem-high-defocus",
        help="a high-defocus table as SerialEM HighFocusMagCal lines",
    )
    q.add_argument("table", help="high-defocus table CSV")
    q.add_argument("--out", metavar="PATH", help="write the lines here (else print them)")
    q.set_defaults(func=cmd_export_serialem_high_defocus)
    q = which.add_parser(
        "motioncor2",
        help="MotionCor2's -Mag triple (major, minor, angle) from a pixel-size result",
    )
    q.add_argument("result", help="JSON written by emcal pixel-size --json")
    q.set_defaults(func=cmd_export_motioncor2)
