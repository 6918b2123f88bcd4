"""``emcal pixel-size``: pixel size and grid angle from an image of a grating or lattice."""

from __future__ import annotations

import sys

from ..cli.kit import history_arguments, record_history, write_json

__all__ = ["add_parser"]


def cmd_pixel_size(args) -> int:
    """Pixel size and grid angle of a grating (or lattice) image."""
    from ..history import magnification_setting
    from . import find_pixel_size

    if args.source == "sample":
        from .sample import grating_image

        image, metadata = grating_image()
    else:
        from ..io.images import open_image

        image, metadata = open_image(args.source)
    spacing = args.spacing_nm
    if spacing is not None:
        spacing = spacing[0] if len(spacing) == 1 else tuple(spacing)
    result = find_pixel_size(
        image,
        mode=args.mode,
        spacing_nm=spacing,
        mesh=args.mesh,
        marker=args.marker,
        binned_size=args.binned_size,
        recorded_pixel_size_nm=metadata.get("pixel_size_nm"),
    )
    print(f"image       {metadata.get('source', args.source)} {image.shape}")
    document = {"source": str(metadata.get("source", args.source)), **result.to_dict()}
    if metadata.get("magnification"):
        document["magnification"] = metadata["magnification"]
    if args.json:
        write_json(args.json, document)
    if not result.found:
        print(f"emcal: {result.message}", file=sys.stderr)
        return 2
    spacings = " x ".join(f"{v:g}" for v in sorted(set(result.spacing_nm)))
    print(f"specimen    {args.mode}, spacing {spacings} nm")
    for line in result.summary_lines():
        print(line)
    for note in result.notes:
        print(f"note: {note}")
    magnification = metadata.get("magnification")
    record_history(
        args,
        "pixel_size",
        *result.history_values(),
        setting=magnification_setting(magnification),
        source=str(metadata.get("source", args.source)),
    )
    if metadata.get("ground_truth"):
        truth = metadata["ground_truth"]
        print(
            f"  (sample ground truth: {truth['pixel_size_nm']:.5g} nm, {truth['angle_deg']:.3f}°)"
        )
    return 0


def add_parser(sub) -> None:
    from .find import MODES

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
        help="specimen: cross-line grating (2160 lines/mm), catalase, mesh, lattice (square, "
        "--spacing-nm), rectangular (two --spacing-nm)",
    )
    p.add_argument(
        "--spacing-nm",
        type=float,
        nargs="+",
        metavar="NM",
        help="specimen period in nm (overrides the mode's); two for --mode rectangular",
    )
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
    history_arguments(p)
    p.set_defaults(func=cmd_pixel_size)
