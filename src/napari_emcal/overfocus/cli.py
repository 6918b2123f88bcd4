"""``emcal overfocus``: the twin's images of a 4D STEM dataset, and its automatic calibration."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from ..cli.kit import (
    dataset_arguments,
    executor,
    executor_arguments,
    history_arguments,
    load_dataset,
    pass_source,
    record_history,
    write_json,
)
from ..errors import InvalidParameterError
from ..units import format_si
from .sample import overfocus_grating

__all__ = ["add_parser"]


def _format_params(p) -> str:
    rows = [
        ("overfocus", format_si(p.overfocus, "µm", 4)),
        ("scan step", format_si(p.scan_pixel_size, "nm", 4)),
        ("camera length", format_si(p.camera_length, "mm", 2)),
        ("detector pixel", format_si(p.detector_pixel_size, "µm", 2)),
        ("beam centre (cy, cx)", f"({p.cy:.2f}, {p.cx:.2f}) px"),
        ("scan rotation", f"{p.scan_rotation:.3f}°"),
        ("flip y", str(p.flip_y)),
        ("descan (px/px)", "[[{:.4f}, {:.4f}], [{:.4f}, {:.4f}]]".format(*np.ravel(p.descan))),
        ("semi-convergence", format_si(p.semiconv, "mrad", 2)),
        ("shadow magnification k", f"{p.magnification:.5f} scan px / detector px"),
    ]
    return "\n".join(f"  {name:<24}{value}" for name, value in rows)


def _write_image(path: Path, image: np.ndarray) -> None:
    import tifffile

    from .._files import atomic_write

    image = np.asarray(image, dtype=np.float32)
    atomic_write(path, lambda temporary: tifffile.imwrite(temporary, image))


def _calibrate(data, start, args):
    """Run the automatic calibration, print the result and write it as JSON."""
    from . import calibrate

    shown = [-1]

    def progress(fraction, params):
        percent = int(100 * fraction)
        if percent // 10 > shown[0]:
            shown[0] = percent // 10
            print(f"  calibrating… {percent:3d} %", file=sys.stderr, flush=True)

    free = args.free or ("scan_rotation", "flip_y", "overfocus")
    result = calibrate(data, start, free=free, progress=progress)
    print(
        f"calibrated in {result.details['seconds']:.1f} s ({result.n_evaluations} evaluations, "
        f"pair correlation {result.score:.3f}; direct estimate: rotation "
        f"{result.estimate.scan_rotation:.3f}°, "
        f"overfocus {format_si(result.estimate.overfocus, 'µm', 4)}):"
    )
    print(_format_params(result.params))
    sigma = result.uncertainty
    if sigma:
        parts = []
        if "scan_rotation" in sigma:
            parts.append(f"scan rotation ± {sigma['scan_rotation']:.3f}°")
        if "overfocus" in sigma:
            parts.append(f"overfocus ± {format_si(sigma['overfocus'], 'µm', 4)}")
        if "cy" in sigma:
            parts.append(f"beam centre ± {sigma['cy']:.2f} px")
        if "descan" in sigma:
            parts.append(f"descan ± {np.max(sigma['descan']):.4f} px/px")
        print(f"  standard errors: {', '.join(parts)}")
    if result.flip_margin is not None:
        print(
            f"  handedness: flip {result.params.flip_y}, {result.flip_margin:.0f} standard "
            "errors from the other"
        )
    if args.json == "-":
        write_json("-", result.params.to_json_dict(result.uncertainty))
    else:
        path = (
            Path(args.json)
            if args.json
            else (Path(args.out) / "calibrated.json" if args.out else Path("calibrated.json"))
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        result.params.save(path, uncertainty=result.uncertainty)
        print(f"wrote       {path}")
    from .calibrate import history_values

    record_history(args, "overfocus", *history_values(result), source=str(args.source))
    return result.params


def cmd_overfocus(args) -> int:
    from . import TwinParams, compute
    from .sharpness import blur

    if args.free and not args.calibrate:
        raise InvalidParameterError("--free says what --calibrate determines: add --calibrate")
    if args.json and not args.calibrate:
        raise InvalidParameterError("--json says where --calibrate writes: add --calibrate")

    data, metadata, notes = load_dataset(args.source, args.scan_shape, args.load_sample)
    for note in notes:
        print(f"note: {note}")
    if args.params:
        params = TwinParams.load(args.params)
    else:
        params = TwinParams.from_metadata(metadata)
    print(f"dataset     {metadata.get('source', args.source)}")
    print(f"shape       scan {data.shape[:2]}, detector {data.shape[2:]}, {data.dtype}")
    print("twin parameters:" if not args.calibrate else "start parameters:")
    print(_format_params(params))
    if args.calibrate:
        params = _calibrate(data, params, args)
    t0 = time.perf_counter()
    where = executor(args)
    images = compute(pass_source(args, data, metadata, where), params, executor=where)
    seconds = time.perf_counter() - t0
    sharp = blur(images["shifted_sum"], params, data.shape[2:])
    frames = data.shape[0] * data.shape[1]
    print(f"one pass    {seconds:.2f} s ({frames / seconds:,.0f} frames/s)")
    print(f"blur of shifted_sum (0 sharp .. 1 blurred): {sharp:.4f}")
    if metadata.get("ground_truth"):
        truth = TwinParams.from_json_dict(metadata["ground_truth"])
        truth_blur = blur(
            compute(data, truth, outputs=["shifted_sum"])["shifted_sum"], truth, data.shape[2:]
        )
        print(
            f"  (sample ground truth: rotation {truth.scan_rotation:.2f}°, flip {truth.flip_y}, "
            f"overfocus {format_si(truth.overfocus, 'µm', 3)}; blur there {truth_blur:.4f})"
        )
    if args.out:
        write_outputs(
            args.out, images, params, str(metadata.get("source", args.source)), seconds, sharp
        )
    return 0


def write_outputs(out, images, params, source: str, seconds: float, sharpness: float) -> None:
    """The five images (TIFF), the parameters and a summary into the folder ``out``."""
    from .._files import atomic_write_text

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for name, image in images.items():
        _write_image(out / f"{name}.tif", image)
    params.save(out / "params.json")
    atomic_write_text(
        out / "summary.json",
        json.dumps(
            {
                "source": source,
                "seconds": seconds,
                "blur_shifted_sum": sharpness,
                "images": {k: list(v.shape) for k, v in images.items()},
            },
            indent=2,
        ),
    )
    print(f"wrote       {', '.join(sorted(images))} (.tif), params.json, summary.json to {out}")


def add_parser(sub) -> None:
    p = sub.add_parser("overfocus", help="overfocus twin images of a 4D STEM dataset")
    dataset_arguments(p, sample=overfocus_grating)
    p.add_argument("--params", help="twin parameters JSON (default: from the file's metadata)")
    p.add_argument("--out", help="folder to write the images (TIFF) and parameters to")
    p.add_argument(
        "--calibrate",
        action="store_true",
        help="find rotation, flip and overfocus (and --free ones) automatically",
    )
    p.add_argument(
        "--free",
        nargs="+",
        choices=["scan_rotation", "flip_y", "overfocus", "cy", "cx", "descan"],
        help="parameters --calibrate determines (default: scan_rotation flip_y overfocus)",
    )
    p.add_argument(
        "--json",
        metavar="PATH",
        help="where --calibrate writes the parameters ('-': standard output; default: "
        "OUT/calibrated.json or ./calibrated.json)",
    )
    executor_arguments(p)
    history_arguments(p)
    p.set_defaults(func=cmd_overfocus)
