"""``emcal high-defocus`` and ``emcal high-defocus-lookup``: scale and rotation of a defocused
image against near focus, and their table."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np

from ..cli.kit import history_arguments, record_history, write_json
from ..errors import InvalidParameterError

__all__ = ["add_parser"]


def cmd_high_defocus(args) -> int:
    """Scale and rotation of a defocused image relative to near focus, from two lines."""
    from . import measure

    if args.near == "sample":
        from .sample import high_defocus_pair

        (near, near_metadata), (far, far_metadata) = high_defocus_pair()
        near_line, far_line = args.near_line, args.far_line
        if near_line is None and far_line is None:  # two particles, as a user would click
            near_line, far_line = sample_lines(far_metadata)
    else:
        from ..io.images import open_image

        if args.far is None:
            raise InvalidParameterError("give the defocused image after the near-focus one")
        (near, near_metadata), (far, far_metadata) = open_image(args.near), open_image(args.far)
        near_line, far_line = args.near_line, args.far_line
    if near_line is None or far_line is None:
        raise InvalidParameterError(
            "give --near-line and --far-line (Y0 X0 Y1 X1 in pixels of "
            "each image, between the same two features)"
        )
    result = measure(
        near,
        far,
        np.reshape(near_line, (2, 2)),
        np.reshape(far_line, (2, 2)),
        refine=not args.no_refine,
    )
    print(
        f"images      {near_metadata.get('source')} {near.shape}, "
        f"{far_metadata.get('source')} {far.shape}"
    )
    print(f"scale       {result.scale:.5f}   (lines alone {result.line_scale:.5f})")
    print(
        f"rotation    {result.rotation_deg:+.3f}°  (lines alone {result.line_rotation_deg:+.3f}°)"
    )
    print(
        f"score       {result.score:.3f}   (lines alone {result.line_score:.3f}); overlap "
        f"{result.overlap:.0%}"
        + (
            f"; {result.patches} regions, residual {result.residual_px:.2f} px"
            if result.refined
            else ""
        )
    )
    for note in result.notes:
        print(f"note: {note}")
    truth = far_metadata.get("ground_truth")
    if truth:
        print(
            f"  (sample ground truth: scale {truth['scale']:.5f}, rotation "
            f"{truth['rotation_deg']:+.3f}°)"
        )
    if args.json:
        write_json(args.json, result.to_dict())
    if args.table:
        from . import HighDefocusTable

        if args.defocus_um is None:
            raise InvalidParameterError("--table needs --defocus-um (of the defocused image)")
        path = Path(args.table)
        table = HighDefocusTable.from_csv(path) if path.exists() else HighDefocusTable()
        added = table.add_result(
            result,
            args.defocus_um,
            intensity=args.intensity,
            spot=args.spot,
            probe=args.probe or "",
            near_image=str(near_metadata.get("source", "")),
            far_image=str(far_metadata.get("source", "")),
        )
        table.to_csv(path)
        print(f"table       {path}: {added.message}")
        values, setting = table.history_entry(added.index)
        record_history(
            args,
            "high_defocus",
            values,
            {},
            setting=setting,
            source=f"{near_metadata.get('source', '')} / {far_metadata.get('source', '')}",
        )
    return 0


def sample_lines(far_metadata):
    """A line between the first two particles that lie inside both sample images."""
    near_points = np.asarray(far_metadata["landmarks_near"])
    far_points = np.asarray(far_metadata["landmarks_far"])
    inside = np.flatnonzero(((far_points > 40) & (far_points < 984)).all(axis=1))
    pair = inside[:2]
    return near_points[pair].ravel().tolist(), far_points[pair].ravel().tolist()


def cmd_high_defocus_lookup(args) -> int:
    """Interpolate a high-defocus table at a defocus and beam setting."""

    from . import HighDefocusTable

    if args.defocus_um is None:
        raise InvalidParameterError("give --defocus-um, the defocus to look up (µm)")
    table = HighDefocusTable.from_csv(args.table)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scale, rotation = table.interpolate(
            args.defocus_um,
            args.intensity,
            args.spot,
            args.probe,
            calibration=args.table_calibration.replace("-", " "),
        )
    for warning in caught:
        if "nothing is calibrated on the" in str(warning.message):
            # scale 1 and rotation 0 would be a default standing in for a calibration
            raise InvalidParameterError(
                f"{warning.message.args[0].split(';')[0]}: the table cannot answer for "
                f"{args.defocus_um:g} µm"
            )
        print(f"emcal: warning: {warning.message}", file=sys.stderr)
    print(f"scale       {scale:.5f}")
    print(f"rotation    {rotation:+.3f}°")
    return 0


def _setting_arguments(p) -> None:
    p.add_argument("--defocus-um", type=float, help="defocus in µm (negative = underfocus)")
    p.add_argument("--intensity", type=float, help="beam intensity as the microscope shows it")
    p.add_argument("--spot", type=float, help="spot size")
    p.add_argument("--probe", help="probe mode (e.g. micro, nano)")


def add_parser(sub) -> None:
    p = sub.add_parser(
        "high-defocus", help="magnification and rotation of a defocused image vs near focus"
    )
    p.add_argument("near", help="near-focus 2D image, or 'sample' for the simulated pair")
    p.add_argument("far", nargs="?", help="defocused 2D image of the same area")
    line = dict(type=float, nargs=4, metavar=("Y0", "X0", "Y1", "X1"))
    p.add_argument("--near-line", **line, help="line between two features in the near image")
    p.add_argument("--far-line", **line, help="the same two features, in the defocused image")
    p.add_argument("--no-refine", action="store_true", help="the line estimate only")
    p.add_argument("--json", metavar="PATH", help="write the result as JSON")
    p.add_argument("--table", metavar="CSV", help="add the result to this table (made if absent)")
    _setting_arguments(p)
    history_arguments(p)
    p.set_defaults(func=cmd_high_defocus)

    p = sub.add_parser(
        "high-defocus-lookup", help="scale and rotation at a defocus, interpolated from a table"
    )
    p.add_argument("table", help="CSV written by the widget or by 'high-defocus --table'")
    _setting_arguments(p)
    p.add_argument(
        "--calibration",
        dest="table_calibration",  # not a file: "calibration" names input files elsewhere
        choices=("magnification", "image-shift"),
        default="magnification",
        help="which rows: the image's magnification and rotation (default), or the image-shift "
        "calibration 'high-defocus-is --table' added",
    )
    p.set_defaults(func=cmd_high_defocus_lookup)
