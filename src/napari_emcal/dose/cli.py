"""``emcal dose``: flux and cumulative dose of images, from their files' metadata."""

from __future__ import annotations

import sys

from ..errors import InvalidParameterError

__all__ = ["add_parser"]


def cmd_dose(args) -> int:
    """Flux and cumulative dose of images, read from their files' metadata."""
    from . import CurrentCalibration, DoseTable
    from .metadata import rows_from_file

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
    if args.dose_text or args.mdoc_out:
        from .export import write_dose_text, write_mdoc_doses

        if args.dose_text:
            print(f"wrote {write_dose_text(table, args.dose_text)} (prior dose, dose per image)")
        if args.mdoc_out:
            mdocs = [f for f in args.files if str(f).lower().endswith(".mdoc")]
            if len(mdocs) != 1:
                raise InvalidParameterError("--mdoc-out needs exactly one .mdoc among the files")
            written, sections = write_mdoc_doses(mdocs[0], table, args.mdoc_out)
            print(f"wrote {written} (ExposureDose, PriorRecordDose in {sections} sections)")
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


def add_parser(sub) -> None:
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
    p.add_argument(
        "--dose-text",
        metavar="PATH",
        help="write each image's prior dose and dose (e/Å², acquisition order), one per line",
    )
    p.add_argument(
        "--mdoc-out",
        metavar="PATH",
        help="write the .mdoc given with ExposureDose and PriorRecordDose from this table",
    )
    p.set_defaults(func=cmd_dose)
