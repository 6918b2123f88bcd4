"""``emcal dose``: flux and cumulative dose of images, from their files' metadata."""

from __future__ import annotations

import sys
import warnings

from ..errors import IncompleteDataWarning, InvalidParameterError

__all__ = ["add_parser"]


def cmd_dose(args) -> int:
    """Flux and cumulative dose of images, read from their files' metadata."""
    from .._files import refuse_overwrite
    from . import CurrentCalibration, DoseTable
    from .metadata import rows_from_file

    outputs = (
        args.csv,
        args.excel,
        args.dose_text,
        args.mdoc_out,
        args.cumulative_angle,
        args.cumulative_order,
        args.relion_star,
        args.aretomo_angles,
        args.plot,
    )
    refuse_overwrite(outputs, [*args.files, args.calibration])  # before anything is read
    calibration = CurrentCalibration.from_csv(args.calibration) if args.calibration else None
    table = DoseTable(
        calibration,
        accumulation=args.accumulation,
        budget=args.budget,
        utc_offset=args.utc_offset or _session_offset(),
    )
    for path in args.files:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", IncompleteDataWarning)
            rows = rows_from_file(path)
        for warning in caught:  # a truncated .mdoc: read, and said in one line
            print(f"emcal: warning: {warning.message}", file=sys.stderr)
        for row in rows:
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
    if frame["record"].isin(["tilt", "frame set", "montage piece"]).any():
        columns[1:3] = ["record", "tilt_angle_deg", "acquisition_order"]
    print(frame[columns].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    for relation in dict.fromkeys(frame.loc[frame.record == "frame set", "relation"]):
        print(relation)
    for note in table.notes():
        print(f"note: {note}", file=sys.stderr)
    _tilt_series_outputs(args, table)
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
        if args.mdoc_out and not _has_tilts(table):
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


def _has_tilts(table) -> bool:
    from .tomography import tilt_series_names

    return bool(tilt_series_names(table))


def _tilt_series_outputs(args, table) -> None:
    """The tilt series' scheme, and its exports when asked for."""
    from . import tomography as tomo

    names = tomo.tilt_series_names(table)
    wanted = [
        args.cumulative_angle,
        args.cumulative_order,
        args.relion_star,
        args.aretomo_angles,
        args.plot,
        args.mdoc_out,
    ]
    for name in names:
        rows = table.frame
        tilts = rows[(rows.series == name) & (rows.record == "tilt")].sort_values(
            "acquisition_order"
        )
        scheme = tomo.recognise_scheme(tilts["tilt_angle_deg"].dropna())
        print(f"tilt series {name}: {len(tilts)} tilts, {scheme}")
    if not any(wanted[:5]) and not (args.mdoc_out and names):
        return
    if not names:
        raise InvalidParameterError(
            "the tilt-series exports need a tilt series (an .mdoc with tilt angles)"
        )
    tilts = tomo.tilt_series(table, args.tilt_series)
    series = args.tilt_series or names[0]
    for path, order in ((args.cumulative_angle, "angle"), (args.cumulative_order, "acquisition")):
        if path:
            print(f"wrote {tomo.write_cumulative_text(tilts, path, order)} ({order} order)")
    if args.relion_star:
        written = tomo.write_relion_tilt_series_star(tilts, args.relion_star, series)
        print(f"wrote {written} (RELION 5 tilt series, rlnMicrographPreExposure)")
    if args.aretomo_angles:
        written, dose = tomo.write_aretomo_angles(tilts, args.aretomo_angles)
        print(f"wrote {written} (AreTomo -AngFile with acquisition order); -ImgDose {dose:.4g}")
    if args.mdoc_out:
        mdocs = [f for f in args.files if str(f).lower().endswith(".mdoc")]
        sources = [f for f in mdocs if _stem(f) == series]
        if len(sources) != 1:
            raise InvalidParameterError(f"--mdoc-out needs the .mdoc of {series} among the files")
        written, sections = tomo.write_mdoc_doses(sources[0], tilts, args.mdoc_out)
        print(f"wrote {written} (ExposureDose, PriorRecordDose in {sections} sections)")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib.figure import Figure

        figure = Figure(figsize=(8, 3.2), layout="constrained")
        angle, order = figure.subplots(1, 2)
        tomo.plot_cumulative(tilts, angle, order)
        figure.suptitle(f"{series}: cumulative dose per tilt")
        figure.savefig(args.plot, dpi=120)
        print(f"wrote {args.plot}")


def _session_offset():
    from ..settings import load_settings

    return load_settings().get("dose_utc_offset")


def _stem(path) -> str:
    from pathlib import Path

    return Path(path).stem


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
    p.add_argument(
        "--utc-offset",
        metavar="+HH:MM",
        help="the instruments' UTC offset for times written without one "
        "(default: the session setting dose_utc_offset, else local time as written)",
    )
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
    tilt = p.add_argument_group("tilt series (from an .mdoc with tilt angles)")
    tilt.add_argument("--tilt-series", metavar="NAME", help="which tilt series (its .mdoc stem)")
    tilt.add_argument(
        "--cumulative-angle", metavar="PATH", help="per-tilt cumulative dose, tilt-angle order"
    )
    tilt.add_argument(
        "--cumulative-order", metavar="PATH", help="per-tilt cumulative dose, acquisition order"
    )
    tilt.add_argument(
        "--relion-star",
        metavar="PATH",
        help="RELION 5 tilt-series STAR file with rlnMicrographPreExposure",
    )
    tilt.add_argument(
        "--aretomo-angles",
        metavar="PATH",
        help="AreTomo -AngFile (tilt angle, acquisition order); prints the -ImgDose",
    )
    tilt.add_argument("--plot", metavar="PNG", help="cumulative dose vs tilt angle and order")
    p.set_defaults(func=cmd_dose)
