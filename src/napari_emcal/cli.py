"""``emcal``: the calibrations without a viewer, for scripts and headless machines."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from .errors import EmcalError, InvalidParameterError

__all__ = ["main"]


def _load_dataset(source: str, scan_shape):
    """(data, metadata, notes) for a path or the name ``sample``."""
    if source == "sample":
        from .samples import overfocus_grating

        data, metadata = overfocus_grating()
        return data, metadata, []
    from .io.readers import open_4d

    ds = open_4d(source, scan_shape=scan_shape)
    return ds.data, ds.metadata, ds.notes


def params_from_metadata(metadata: dict, overrides: dict | None = None):
    """Twin parameters from what a file says; ``overrides`` fill or replace fields."""
    from .overfocus import TwinParams

    if metadata.get("nominal"):
        base = TwinParams.from_json_dict(metadata["nominal"]).to_dict()
    else:
        base = {}
        if metadata.get("scan_step"):
            base["scan_pixel_size"] = float(metadata["scan_step"][1])
        if metadata.get("detector_pixel_size"):
            base["detector_pixel_size"] = float(metadata["detector_pixel_size"][1])
        if metadata.get("camera_length"):
            base["camera_length"] = float(metadata["camera_length"])
    base.update(overrides or {})
    missing = [
        n
        for n in (
            "overfocus",
            "scan_pixel_size",
            "camera_length",
            "detector_pixel_size",
            "cy",
            "cx",
        )
        if n not in base
    ]
    if missing:
        raise EmcalError(
            f"The file does not give {', '.join(missing)}; pass them with --params params.json "
            "(write one with TwinParams(...).save(path) or the widget's 'Save')."
        )
    return TwinParams(**base)


def _format_params(p) -> str:
    rows = [
        ("overfocus", f"{p.overfocus * 1e6:.4f} µm"),
        ("scan step", f"{p.scan_pixel_size * 1e9:.4f} nm"),
        ("camera length", f"{p.camera_length * 1e3:.2f} mm"),
        ("detector pixel", f"{p.detector_pixel_size * 1e6:.2f} µm"),
        ("beam centre (cy, cx)", f"({p.cy:.2f}, {p.cx:.2f}) px"),
        ("scan rotation", f"{p.scan_rotation:.3f}°"),
        ("flip y", str(p.flip_y)),
        ("semi-convergence", "—" if p.semiconv is None else f"{p.semiconv * 1e3:.2f} mrad"),
        ("shadow magnification k", f"{p.magnification:.5f} scan px / detector px"),
    ]
    return "\n".join(f"  {name:<24}{value}" for name, value in rows)


def _write_image(path: Path, image: np.ndarray) -> None:
    import tifffile

    tifffile.imwrite(path, np.asarray(image, dtype=np.float32))


def _calibrate(data, start, args):
    """Run the automatic calibration, print the result and write it as JSON."""
    from .overfocus import calibrate

    shown = [-1]

    def progress(fraction, params):
        percent = int(100 * fraction)
        if percent // 10 > shown[0]:
            shown[0] = percent // 10
            print(f"  calibrating… {percent:3d} %", file=sys.stderr, flush=True)

    result = calibrate(data, start, free=args.free, progress=progress)
    print(
        f"calibrated in {result.details['seconds']:.1f} s ({result.n_evaluations} evaluations, "
        f"pair correlation {result.score:.3f}; direct estimate: rotation "
        f"{result.estimate.scan_rotation:.3f}°, "
        f"overfocus {result.estimate.overfocus * 1e6:.4f} µm):"
    )
    print(_format_params(result.params))
    path = (
        Path(args.json)
        if args.json
        else (Path(args.out) / "calibrated.json" if args.out else Path("calibrated.json"))
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    result.params.save(path)
    print(f"wrote       {path}")
    return result.params


def cmd_overfocus(args) -> int:
    from .overfocus import TwinParams, compute
    from .overfocus.sharpness import blur

    data, metadata, notes = _load_dataset(args.source, args.scan_shape)
    for note in notes:
        print(f"note: {note}")
    if args.params:
        params = TwinParams.load(args.params)
    else:
        params = params_from_metadata(metadata)
    print(f"dataset     {metadata.get('source', args.source)}")
    print(f"shape       scan {data.shape[:2]}, detector {data.shape[2:]}, {data.dtype}")
    print("twin parameters:" if not args.calibrate else "start parameters:")
    print(_format_params(params))
    if args.calibrate:
        params = _calibrate(data, params, args)
    t0 = time.perf_counter()
    executor = _executor(args)
    images = compute(_pass_source(args, data, executor), params, executor=executor)
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
            f"overfocus {truth.overfocus * 1e6:.3f} µm; blur there {truth_blur:.4f})"
        )
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        for name, image in images.items():
            _write_image(out / f"{name}.tif", image)
        params.save(out / "params.json")
        (out / "summary.json").write_text(
            json.dumps(
                {
                    "source": str(metadata.get("source", args.source)),
                    "seconds": seconds,
                    "blur_shifted_sum": sharp,
                    "images": {k: list(v.shape) for k, v in images.items()},
                },
                indent=2,
            )
        )
        print(f"wrote       {', '.join(sorted(images))} (.tif), params.json, summary.json to {out}")
    return 0


def cmd_pixel_size(args) -> int:
    """Pixel size and grid angle of a grating (or lattice) image."""
    from .grating import find_pixel_size

    if args.source == "sample":
        from .samples import grating_image

        image, metadata = grating_image()
    else:
        from .io.images import open_image

        image, metadata = open_image(args.source)
    result = find_pixel_size(
        image,
        mode=args.mode,
        spacing_nm=args.spacing_nm,
        mesh=args.mesh,
        marker=args.marker,
        binned_size=args.binned_size,
    )
    print(f"image       {metadata.get('source', args.source)} {image.shape}")
    document = {"source": str(metadata.get("source", args.source)), **result.to_dict()}
    if metadata.get("magnification"):
        document["magnification"] = metadata["magnification"]
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(document, indent=2))
    if not result.found:
        print(f"emcal: {result.message}", file=sys.stderr)
        return 2
    a, b = result.spacing_px
    print(
        f"pixel size  {result.pixel_size_nm:.5g} nm  ({args.mode}, spacing "
        f"{result.spacing_nm[0]:g} nm)"
    )
    print(
        f"grid angle  {result.angle_deg:.3f}°  (directions {result.angle_between_deg:.2f}° apart)"
    )
    print(
        f"spacing     {a:.3f} / {b:.3f} px over {result.intervals[0]} / {result.intervals[1]} "
        f"intervals; binning {result.binning}; {result.quality:.0%} of lattice peaks found"
    )
    if metadata.get("pixel_size_nm"):
        print(f"  (the file says {metadata['pixel_size_nm']:.5g} nm)")
    if metadata.get("ground_truth"):
        truth = metadata["ground_truth"]
        print(
            f"  (sample ground truth: {truth['pixel_size_nm']:.5g} nm, {truth['angle_deg']:.3f}°)"
        )
    return 0


def cmd_high_defocus(args) -> int:
    """Scale and rotation of a defocused image relative to near focus, from two lines."""
    from .highdefocus import measure

    if args.near == "sample":
        from .samples import high_defocus_pair

        (near, near_metadata), (far, far_metadata) = high_defocus_pair()
        near_line, far_line = args.near_line, args.far_line
        if near_line is None and far_line is None:  # two particles, as a user would click
            near_line, far_line = _sample_lines(far_metadata)
    else:
        from .io.images import open_image

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
    truth = far_metadata.get("ground_truth")
    if truth:
        print(
            f"  (sample ground truth: scale {truth['scale']:.5f}, rotation "
            f"{truth['rotation_deg']:+.3f}°)"
        )
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result.to_dict(), indent=2))
    if args.table:
        from .highdefocus import HighDefocusTable

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
    return 0


def _sample_lines(far_metadata):
    """A line between the first two particles that lie inside both sample images."""
    near_points = np.asarray(far_metadata["landmarks_near"])
    far_points = np.asarray(far_metadata["landmarks_far"])
    inside = np.flatnonzero(((far_points > 40) & (far_points < 984)).all(axis=1))
    pair = inside[:2]
    return near_points[pair].ravel().tolist(), far_points[pair].ravel().tolist()


def cmd_high_defocus_lookup(args) -> int:
    """Interpolate a high-defocus table at a defocus and beam setting."""
    import warnings

    from .highdefocus import HighDefocusTable

    if args.defocus_um is None:
        raise InvalidParameterError("give --defocus-um, the defocus to look up (µm)")
    table = HighDefocusTable.from_csv(args.table)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scale, rotation = table.interpolate(args.defocus_um, args.intensity, args.spot, args.probe)
    for warning in caught:
        print(f"emcal: warning: {warning.message}", file=sys.stderr)
    print(f"scale       {scale:.5f}")
    print(f"rotation    {rotation:+.3f}°")
    return 0


def cmd_dose(args) -> int:
    """Flux and cumulative dose of images, read from their files' metadata."""
    from .dose import CurrentCalibration, DoseTable
    from .dose.metadata import rows_from_file

    calibration = CurrentCalibration.from_csv(args.calibration) if args.calibration else None
    table = DoseTable(calibration, accumulation=args.accumulation, budget=args.budget)
    for path in args.files:
        for row in rows_from_file(path):
            table.add(**{**row, **_typed_conditions(args, row)})
    frame = table.frame
    columns = [
        "image",
        "time",
        "mode",
        "flux_e_A2_s",
        "dose_e_A2",
        "probe_dose_e_A2",
        "cumulative_e_A2",
        "problems",
    ]
    print(frame[columns].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if args.csv:
        table.to_csv(args.csv)
        print(f"wrote {args.csv}")
    if args.excel:
        table.to_excel(args.excel)
        print(f"wrote {args.excel}")
    over = frame.index[frame.over_budget]
    if len(over):
        print(
            f"emcal: the {args.budget:g} e/Å² budget is exceeded from {frame.image[over[0]]}",
            file=sys.stderr,
        )
    return 0


def _typed_conditions(args, row) -> dict:
    """Conditions given on the command line fill what the files do not record."""
    typed = {
        "current_pa": args.current_pa,
        "illuminated_diameter_um": args.beam_diameter_um,
        "counts_per_electron": args.counts_per_electron,
    }
    return {k: v for k, v in typed.items() if v is not None and k not in row}


def cmd_check(args) -> int:
    """Is a 4D STEM dataset fit for virtual imaging, CoM/DPC, strain, ptychography?"""
    from .dataset_check.report import check_dataset

    data, metadata, notes = _load_dataset(args.source, args.scan_shape)
    for note in notes:
        print(f"note: {note}")
    if args.camera_length_mm:
        metadata = {**metadata, "camera_length": args.camera_length_mm * 1e-3}
    if args.detector_pixel_um:
        metadata = {**metadata, "detector_pixel_size": [args.detector_pixel_um * 1e-6] * 2}
    print(f"dataset     {metadata.get('source', args.source)} {tuple(data.shape)} {data.dtype}")
    start = time.perf_counter()
    executor = _executor(args)
    result, report = check_dataset(
        data,
        metadata,
        max_count=args.max_count,
        descan_tolerance_px=args.tolerance_px,
        executor=executor,
        source=_pass_source(args, data, executor),
    )
    print(report.summary())
    print(f"one pass in {time.perf_counter() - start:.2f} s")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(
            json.dumps(
                {"source": str(metadata.get("source", args.source)), **report.to_dict()}, indent=2
            )
        )
    if report.descan_exceeds:
        print(
            f"emcal: warning: the disk moves {report.descan.shift_across_scan:.2f} px across "
            f"the scan (tolerance {args.tolerance_px:g} px)",
            file=sys.stderr,
        )
    return 0


def _executor(args) -> str:
    from .engine import check_executor

    return check_executor(args.scheduler or args.executor)


def _pass_source(args, data, executor: str):
    """What the pass reads: the file itself on a LiberTEM executor (a cluster's workers
    open it), else the lazy array already opened here."""
    if executor != "local" and args.source != "sample":
        if args.scan_shape:
            raise InvalidParameterError(
                "--scan-shape with a LiberTEM executor: reshape the "
                "file first, or run with --executor local"
            )
        return args.source
    return data


def _executor_arguments(p) -> None:
    p.add_argument(
        "--executor",
        choices=["local", "inline", "threads"],
        default="local",
        help="where the pass runs: this process (default), LiberTEM inline or LiberTEM threads",
    )
    p.add_argument(
        "--scheduler",
        metavar="tcp://HOST:PORT",
        help="run the pass on an existing dask.distributed cluster through "
        "LiberTEM (the workers must be able to read the file)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="emcal", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("overfocus", help="overfocus twin images of a 4D STEM dataset")
    p.add_argument("source", help="4D STEM file, or 'sample' for the simulated grating")
    p.add_argument("--params", help="twin parameters JSON (default: from the file's metadata)")
    p.add_argument("--out", help="folder to write the images (TIFF) and parameters to")
    p.add_argument(
        "--scan-shape",
        type=int,
        nargs=2,
        metavar=("NY", "NX"),
        help="arrange the frames into this scan",
    )
    p.add_argument(
        "--calibrate",
        action="store_true",
        help="find rotation, flip and overfocus (and --free ones) automatically",
    )
    p.add_argument(
        "--free",
        nargs="+",
        default=["scan_rotation", "flip_y", "overfocus"],
        choices=["scan_rotation", "flip_y", "overfocus", "cy", "cx"],
        help="parameters --calibrate determines (default: %(default)s)",
    )
    p.add_argument(
        "--json",
        metavar="PATH",
        help="where --calibrate writes the parameters (default: OUT/calibrated.json "
        "or ./calibrated.json)",
    )
    _executor_arguments(p)
    p.set_defaults(func=cmd_overfocus)

    from .grating import MODES

    p = sub.add_parser("pixel-size", help="pixel size from an image of a calibration grating")
    p.add_argument(
        "source",
        help="2D image (.tif, .dm3/.dm4, .emd, .ser, .mrc, .npy), or "
        "'sample' for the simulated grating",
    )
    p.add_argument(
        "--mode",
        choices=MODES,
        default="grating",
        help="specimen: cross-line grating (2160 lines/mm), catalase, mesh, lattice",
    )
    p.add_argument("--spacing-nm", type=float, help="specimen period in nm (overrides the mode's)")
    p.add_argument("--mesh", type=float, help="grid openings per inch (mode mesh)")
    p.add_argument(
        "--marker",
        type=float,
        nargs=2,
        metavar=("DY", "DX"),
        help="start from the autocorrelation peak near this lag (image pixels)",
    )
    p.add_argument("--binned-size", type=int, help="working size in pixels (default: automatic)")
    p.add_argument("--json", metavar="PATH", help="write the result as JSON")
    p.set_defaults(func=cmd_pixel_size)

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
    p.set_defaults(func=cmd_high_defocus)

    p = sub.add_parser(
        "high-defocus-lookup", help="scale and rotation at a defocus, interpolated from a table"
    )
    p.add_argument("table", help="CSV written by the widget or by 'high-defocus --table'")
    _setting_arguments(p)
    p.set_defaults(func=cmd_high_defocus_lookup)

    p = sub.add_parser("dose", help="flux and cumulative dose of images from their metadata")
    p.add_argument(
        "files",
        nargs="+",
        help="images (.emd, .dm3/.dm4, .tif, .mrc, .ser, .npy), "
        "SerialEM .mdoc files, 4D STEM files",
    )
    p.add_argument("--calibration", metavar="CSV", help="current calibration to look up in")
    p.add_argument("--accumulation", choices=["exposure", "wall_clock"], default="exposure")
    p.add_argument("--budget", type=float, help="dose budget, e/Å²")
    p.add_argument("--current-pa", type=float, help="beam current where a file has none")
    p.add_argument("--beam-diameter-um", type=float, help="TEM beam diameter at the specimen")
    p.add_argument("--counts-per-electron", type=float, help="camera conversion factor")
    p.add_argument("--csv", metavar="PATH", help="write the table as CSV")
    p.add_argument("--excel", metavar="PATH", help="write the table as an Excel workbook")
    p.set_defaults(func=cmd_dose)

    p = sub.add_parser("check", help="is a 4D STEM dataset fit for the intended analysis?")
    p.add_argument("source", help="4D STEM file, or 'sample' for the simulated grating")
    p.add_argument(
        "--scan-shape",
        type=int,
        nargs=2,
        metavar=("NY", "NX"),
        help="arrange the frames into this scan",
    )
    p.add_argument(
        "--max-count",
        type=float,
        help="saturation count (default: the file's, else the dtype's maximum)",
    )
    p.add_argument(
        "--tolerance-px",
        type=float,
        default=2.0,
        help="largest disk shift across the scan that counts as centred (px)",
    )
    p.add_argument("--camera-length-mm", type=float, help="when the file does not say")
    p.add_argument("--detector-pixel-um", type=float, help="when the file does not say")
    p.add_argument("--json", metavar="PATH", help="write the report as JSON")
    _executor_arguments(p)
    p.set_defaults(func=cmd_check)
    return parser


def _setting_arguments(p) -> None:
    p.add_argument("--defocus-um", type=float, help="defocus in µm (negative = underfocus)")
    p.add_argument("--intensity", type=float, help="beam intensity as the microscope shows it")
    p.add_argument("--spot", type=float, help="spot size")
    p.add_argument("--probe", help="probe mode (e.g. micro, nano)")


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (EmcalError, OSError) as exc:
        print(f"emcal: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
