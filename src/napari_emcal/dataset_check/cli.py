"""``emcal check``: is a 4D STEM dataset fit for the intended analysis?"""

from __future__ import annotations

import sys
import time

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
    start = time.perf_counter()
    where = executor(args)
    result, report = check_dataset(
        data,
        metadata,
        max_count=args.max_count,
        descan_tolerance_px=args.tolerance_px,
        executor=where,
        source=pass_source(args, data, metadata, where),
    )
    print(report.summary())
    print(f"one pass in {time.perf_counter() - start:.2f} s")
    if args.json:
        source = str(metadata.get("source", args.source))
        write_json(args.json, {"source": source, **report.to_dict()})
    if twin is not None:
        from .com_rotation import compare_rotations

        if report.com_rotation is None:
            print(f"note: no CoM rotation measured: nothing to compare with {args.twin}")
        else:
            rotation, flip = twin
            print(f"vs {args.twin}: {compare_rotations(report.com_rotation, rotation, flip)}")
    if report.descan_exceeds:
        print(
            f"emcal: warning: the disk moves {report.descan.shift_across_scan:.2f} px across "
            f"the scan (tolerance {args.tolerance_px:g} px)",
            file=sys.stderr,
        )
    return 0


def _twin_rotation(path) -> tuple[float, bool]:
    """``scan_rotation`` (degrees) and ``flip_y`` of a saved twin-parameter JSON (the
    documented file format: values with units), read without the overfocus tool."""
    from .._files import read_json

    document = read_json(path, what="twin-parameter file")
    try:
        parameters = document["parameters"]
        rotation = parameters["scan_rotation"]
        flip = parameters["flip_y"]
        degrees = convert(float(rotation["value"]), rotation.get("unit", "deg"), "deg")
        return degrees, bool(flip["value"] if isinstance(flip, dict) else flip)
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
        help="an overfocus calibration (twin parameters) to compare the CoM rotation with",
    )
    executor_arguments(p)
    p.set_defaults(func=cmd_check)
