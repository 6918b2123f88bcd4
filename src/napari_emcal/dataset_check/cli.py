"""``emcal check``: is a 4D STEM dataset fit for the intended analysis?"""

from __future__ import annotations

import sys
import time

import numpy as np

from ..cli.kit import (
    dataset_arguments,
    executor,
    executor_arguments,
    load_dataset,
    pass_source,
    positive_float,
    write_json,
)
from ..errors import InvalidDataError
from ..units import convert, to_si

__all__ = ["add_parser"]


def cmd_check(args) -> int:
    """Is a 4D STEM dataset fit for virtual imaging, CoM/DPC, strain, ptychography?"""
    from .report import check_dataset

    # read the twin first: a missing or broken file is an error, not a silent skip
    twin = _twin_rotation(args.twin) if args.twin else None
    data, metadata, notes = load_dataset(args.source, args.scan_shape, args.load_sample)
    for note in notes:
        print(f"note: {note}")
    if args.camera_length_mm:
        metadata = {**metadata, "camera_length": to_si(args.camera_length_mm, "mm")}
    if args.detector_pixel_um:
        metadata = {**metadata, "detector_pixel_size": [to_si(args.detector_pixel_um, "um")] * 2}
    print(f"dataset     {metadata.get('source', args.source)} {tuple(data.shape)} {data.dtype}")
    turn = _rotation(args, twin)
    start = time.perf_counter()
    where = executor(args)
    result, report = check_dataset(
        data,
        metadata,
        max_count=args.max_count,
        descan_tolerance_px=args.tolerance_px,
        scan_rotation=turn[0],
        flip_y=turn[1],
        executor=where,
        source=pass_source(args, data, metadata, where),
    )
    print(report.summary())
    passes = (
        "two passes (the second on compensated frames)"
        if result.images_follow_beam
        else ("one pass")
    )
    print(f"{passes} in {time.perf_counter() - start:.2f} s")
    if args.json:
        source = str(metadata.get("source", args.source))
        write_json(args.json, {"source": source, **report.to_dict()})
    if args.libertem or args.py4dstem:
        _export_descan(args, report, turn)
    if twin is not None:
        from .com_rotation import compare_rotations

        if report.com_rotation is None:
            print(f"note: no CoM rotation measured: nothing to compare with {args.twin}")
        else:
            rotation, flip = twin[:2]
            print(f"vs {args.twin}: {compare_rotations(report.com_rotation, rotation, flip)}")
    if twin is not None and twin[2] is not None and report.descan is not None:
        from .export import compare_descan

        print(f"vs {args.twin}: {compare_descan(report.descan, *twin[2:])}")
    if report.descan_exceeds:
        print(
            f"emcal: warning: the disk moves {report.descan.shift_across_scan:.2f} px across "
            f"the scan (tolerance {args.tolerance_px:g} px)",
            file=sys.stderr,
        )
    return 0


def _rotation(args, twin) -> tuple[float, bool]:
    """The scan rotation and flip that turn the CoM (and the LiberTEM regression): typed,
    else the twin's, else none (detector directions), said when not typed."""
    if args.rotation is not None or args.flip_y:
        return args.rotation or 0.0, args.flip_y
    if twin is not None:
        print(f"note: scan rotation {twin[0]:g}° and flip {twin[1]} from {args.twin}")
        return twin[0], twin[1]
    return 0.0, False


def _export_descan(args, report, turn) -> None:
    """The descan as LiberTEM's CoM regression and py4DSTEM's origin maps (``--libertem``,
    ``--py4dstem``)."""
    from .export import write_descan_exports

    if report.descan is None:
        raise InvalidDataError(
            "no descan was fitted (no bright-field disk in enough frames): nothing to export"
        )
    for line in write_descan_exports(
        report, libertem=args.libertem, py4dstem=args.py4dstem, rotation=turn
    ):
        print(line)


def _twin_rotation(path) -> tuple:
    """``scan_rotation`` (degrees), ``flip_y``, and the descan (2x2, px per scan px) with
    its standard errors (or None) of a saved twin-parameter JSON (the documented file
    format: values with units), read without the overfocus tool. A file without a descan
    gives None for both."""
    from .._files import read_json

    document = read_json(path, what="twin-parameter file")
    try:
        parameters = document["parameters"]
        rotation = parameters["scan_rotation"]
        flip = parameters["flip_y"]
        degrees = convert(float(rotation["value"]), rotation.get("unit", "deg"), "deg")
        descan = sigma = None
        if "descan" in parameters:
            entry = parameters["descan"]
            descan = np.array(entry["value"] if isinstance(entry, dict) else entry, float)
            errors = (document.get("uncertainty") or {}).get("descan")
            if errors is not None:
                sigma = np.array(errors["value"] if isinstance(errors, dict) else errors, float)
            if descan.shape != (2, 2) or (sigma is not None and sigma.shape != (2, 2)):
                raise ValueError("descan must be 2x2")
        return degrees, bool(flip["value"] if isinstance(flip, dict) else flip), descan, sigma
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidDataError(
            f"{path} is not a twin-parameter file with scan_rotation and flip_y: {exc}"
        ) from exc


def add_parser(sub, sample=None) -> None:
    """``emcal check``; ``sample`` loads the dataset named 'sample' (the CLI hands it a
    simulated 4D dataset: this tool has none of its own)."""
    p = sub.add_parser("check", help="is a 4D STEM dataset fit for the intended analysis?")
    dataset_arguments(p, sample)
    p.add_argument(
        "--max-count",
        type=positive_float,
        help="saturation count (default: the file's, else the dtype's maximum)",
    )
    p.add_argument(
        "--tolerance-px",
        type=positive_float,
        default=2.0,
        help="largest disk shift across the scan that counts as centred (px)",
    )
    p.add_argument("--camera-length-mm", type=positive_float, help="when the file does not say")
    p.add_argument("--detector-pixel-um", type=positive_float, help="when the file does not say")
    p.add_argument("--json", metavar="PATH", help="write the report as JSON")
    p.add_argument(
        "--twin",
        metavar="JSON",
        help="an overfocus calibration (twin parameters) to compare the CoM rotation and "
        "the descan with",
    )
    p.add_argument(
        "--rotation",
        type=float,
        help="scan rotation (deg) that turns the CoM into scan directions (as LiberTEM's "
        "scan_rotation; default the --twin's, else 0: detector directions); the "
        "--libertem export's regression is in those directions",
    )
    p.add_argument("--flip-y", action="store_true", help="flip of the detector y axis")
    p.add_argument(
        "--libertem",
        metavar="PATH",
        help="write LiberTEM CoMUDF arguments (cy, cx, r, scan_rotation, flip_y, and the "
        "descan as regression) as JSON",
    )
    p.add_argument(
        "--py4dstem",
        metavar="PATH",
        help="write py4DSTEM origin maps qx0, qy0 of the descan (.npz, else JSON)",
    )
    executor_arguments(p)
    p.set_defaults(func=cmd_check)
