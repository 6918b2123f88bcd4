"""``emcal image-shift``, ``stage-shift``, ``high-defocus-is``, ``beam-intensity`` and
``dead-time``: SerialEM's calibrations from a recorded series (``STACK.mrc`` with
``STACK.mrc.mdoc``), printed, as JSON, and as SerialEM's lines."""

from __future__ import annotations

import numpy as np

from .._files import atomic_write_text
from ..cli.kit import history_arguments, record_history, write_json
from ..errors import InvalidDataError

__all__ = ["add_parser"]


def _groups(series):
    groups = [g for g in series.groups().values() if len(g) >= 2]
    if not groups:
        raise InvalidDataError(
            f"{series.mdoc.name}: {len(series.records)} record(s) and no two at one mag index, "
            "camera and binning: a calibration needs at least two images"
        )
    return groups


def _setting_text(record) -> str:
    return ", ".join(f"{k}={v}" for k, v in record.setting().items() if v is not None and v == v)


def _matrix_values(fit) -> tuple[dict, dict]:
    names = (("dcol_dx", 0, 0), ("dcol_dy", 0, 1), ("drow_dx", 1, 0), ("drow_dy", 1, 1))
    return (
        {n: float(fit.matrix[i, j]) for n, i, j in names},
        {n: float(fit.sigma[i, j]) for n, i, j in names},
    )


def _serialem(make) -> tuple[list[str], str | None]:
    """SerialEM's lines, or none and the reason (e.g. the .mdoc lacks MagIndex)."""
    try:
        return make(), None
    except InvalidDataError as exc:
        return [], str(exc)


def _output(args, document, lines, reason) -> None:
    """Print the lines (or why there are none), write --json and --lines."""
    if lines:
        print("SerialEM    " + "\n            ".join(lines))
    else:
        print(f"SerialEM    not written: {reason}")
        document["notes"].append(f"no SerialEM lines: {reason}")
    document["serialem"] = lines
    if args.json:
        write_json(args.json, document)
    if args.lines:
        if not lines:
            raise InvalidDataError(f"--lines: {reason}")
        atomic_write_text(args.lines, "\n".join(lines) + "\n")
        print(f"written     {args.lines}")


def _print_fit(fit, records, unit: str) -> None:
    m, s = fit.matrix, fit.sigma
    print(f"group       {_setting_text(records[0])}; {len(records)} records")
    print(f"matrix      [[dcol/dx, dcol/dy], [drow/dx, drow/dy]] unbinned px of the stored {unit}")
    for i in range(2):
        print(f"            {m[i, 0]:12.4f} ± {s[i, 0]:.4f}   {m[i, 1]:12.4f} ± {s[i, 1]:.4f}")
    print(
        f"residuals   rms {np.sqrt(np.mean(fit.residuals**2)):.3f} px, largest "
        f"{fit.residuals.max():.3f} px; drift up to {fit.drift_rate:.3g} px/{fit.drift_axis}"
    )
    for note in fit.notes:
        print(f"note: {note}")


def _prior(args):
    if getattr(args, "prior", None) is None:
        return None
    return np.reshape(args.prior, (2, 2))


def _shift_command(args, setting: str) -> int:
    from . import lines as se
    from .series import read_series
    from .shifts import fit_shift_matrix

    series = read_series(args.stack)
    fits = []
    for records in _groups(series):
        fit = fit_shift_matrix(
            records, setting, prior=_prior(args), search_radius=args.search_radius
        )
        fits.append((fit, records))
        _print_fit(
            fit, records, "array per IS unit" if setting == "image_shift" else "array per µm"
        )
    lines, reason = _serialem(
        lambda: (
            se.image_shift_lines([(f, r[0]) for f, r in fits], series.row_is_camera_y)
            if setting == "image_shift"
            else [line for f, r in fits for line in se.stage_lines(f, r[0], series.row_is_camera_y)]
        )
    )
    document = fits[0][0].to_dict()
    document["notes"] = [*series.notes, *document["notes"]]
    if len(fits) > 1:
        document["groups"] = [{"setting": r[0].setting(), **f.to_dict()} for f, r in fits]
    _output(args, document, lines, reason)
    tool = "image_shift" if setting == "image_shift" else "stage_shift"
    for fit, records in fits:
        values, sigma = _matrix_values(fit)
        record_history(
            args, tool, values, sigma, setting=_setting_text(records[0]), source=str(args.stack)
        )
    return 0


def cmd_image_shift(args) -> int:
    """The image-shift matrix of each group of a series."""
    return _shift_command(args, "image_shift")


def cmd_stage_shift(args) -> int:
    """The stage-to-camera matrix of each group of a series."""
    return _shift_command(args, "stage")


def cmd_high_defocus_is(args) -> int:
    """Scale and rotation of the image-shift matrix at a defocus relative to focus."""
    from . import lines as se
    from .series import read_series
    from .shifts import high_defocus_image_shift, image_shift_matrix

    first = read_series(args.stack)
    if args.defocused:
        second = read_series(args.defocused)
        parts = [first.records, second.records]
    else:
        by_defocus = first.with_defocus()
        if len(by_defocus) != 2 or None in by_defocus:
            raise InvalidDataError(
                f"{first.mdoc.name} holds {len(by_defocus)} defocus value(s): give two series "
                "(focus, defocused) or one whose Defocus takes two values"
            )
        parts = [by_defocus[k] for k in sorted(by_defocus, key=lambda d: abs(d))]
    fits = [image_shift_matrix(p, prior=_prior(args)) for p in parts]
    defocus = [p[0].defocus_um for p in parts]
    if any(d is None for d in defocus):
        raise InvalidDataError("the .mdoc records no Defocus for these series")
    result = high_defocus_image_shift(
        *fits, focus_defocus_um=defocus[0], defocus_um=defocus[1], record=parts[1][0]
    )
    row_sense = first.row_is_camera_y
    lines, reason = _serialem(lambda: [se.high_focus_is_line(result, parts[1][0], row_sense)])
    print(f"defocus     {result.defocus_um:g} µm against {result.focus_defocus_um:g} µm")
    print(f"scale       {result.scale:.5f} ± {result.scale_sigma:.5f}")
    print(
        f"rotation    {result.rotation_deg:+.3f}° ± {result.rotation_sigma_deg:.3f}° "
        "(stored array, +col towards +row)"
    )
    for note in result.notes:
        print(f"note: {note}")
    _output(args, result.to_dict(), lines, reason)
    record_history(
        args,
        "high_defocus_is",
        {"scale": result.scale, "rotation_deg": result.rotation_deg},
        {"scale": result.scale_sigma, "rotation_deg": result.rotation_sigma_deg},
        setting=f"defocus_um={result.defocus_um:g}, {_setting_text(parts[1][0])}",
        source=str(args.stack),
    )
    if getattr(args, "table", None):
        row = result.table_row(str(args.stack), str(args.defocused or args.stack))
        print(f"table       {args.add_to_table(args.table, row)}")
    return 0


def cmd_beam_intensity(args) -> int:
    """Current against intensity, and SerialEM's BeamIntensityTable."""
    from . import lines as se
    from .intensity import beam_intensity
    from .series import read_series

    series = read_series(args.stack, load_images=not args.mdoc_only)
    records = series.records
    result = beam_intensity(records)
    table, reason = _serialem(lambda: se.beam_intensity_lines(result, records[0]))
    print("intensity   current (counts/unbinned px/s)")
    for i, c in zip(result.intensities, result.currents, strict=True):
        print(f"{i:10.5f}  {c:12.3f}")
    c, s = result.coefficients, result.sigma
    print(
        f"fit         intensity = {c[0]:.5f}(±{s[0]:.2g}) + {c[1]:.5f}(±{s[1]:.2g})·L + "
        f"{c[2]:.5f}(±{s[2]:.2g})·L², L = ln(current); rms {result.residual_rms:.2g}"
    )
    for note in [*series.notes, *result.notes]:
        print(f"note: {note}")
    _output(args, result.to_dict(), table, reason)
    record_history(
        args,
        "beam_intensity",
        {"c0": float(c[0]), "c1": float(c[1]), "c2": float(c[2])},
        {"c0": float(s[0]), "c1": float(s[1]), "c2": float(s[2])},
        setting=_setting_text(records[0]),
        source=str(args.stack),
    )
    return 0


def cmd_dead_time(args) -> int:
    """Shutter dead time from mean counts against exposure time."""
    from . import lines as se
    from .intensity import dead_time
    from .series import read_series

    series = read_series(args.stack, load_images=not args.mdoc_only)
    result = dead_time(series.records)
    line = se.dead_time_line(result)
    print(f"rate        {result.rate:.4g} counts/s")
    print(f"dead time   {result.dead_time_s * 1e3:.3f} ± {result.dead_time_sigma_s * 1e3:.3f} ms")
    print(f"SerialEM    {line}   (a camera property, in its CameraProperties block)")
    for note in [*series.notes, *result.notes]:
        print(f"note: {note}")
    document = result.to_dict()
    document["serialem"] = [line]
    if args.json:
        write_json(args.json, document)
    if args.lines:
        atomic_write_text(args.lines, line + "\n")
    camera = series.records[0].camera
    record_history(
        args,
        "dead_time",
        {"dead_time_s": result.dead_time_s},
        {"dead_time_s": result.dead_time_sigma_s},
        setting="" if camera is None else f"camera={camera}",
        source=str(args.stack),
    )
    return 0


def _common(p, *, images_needed: bool = True) -> None:
    p.add_argument("stack", help="STACK.mrc (with STACK.mrc.mdoc beside it) or the .mdoc")
    p.add_argument("--json", metavar="PATH", help="write the result as JSON ('-': stdout)")
    p.add_argument("--lines", metavar="PATH", help="write SerialEM's lines to this file")
    if not images_needed:
        p.add_argument(
            "--mdoc-only",
            action="store_true",
            help="use the .mdoc's MinMaxMean instead of reading the images",
        )
    history_arguments(p)


def _shift_options(p) -> None:
    p.add_argument(
        "--prior",
        type=float,
        nargs=4,
        metavar=("DCOL_DX", "DCOL_DY", "DROW_DX", "DROW_DY"),
        help="expected matrix (e.g. the current calibration, in this command's units): "
        "peaks are looked for near what it predicts (needed for a periodic specimen)",
    )


def add_parser(sub, high_defocus_table=None) -> None:
    """The SerialEM commands; ``high_defocus_table(path, row)`` (from the CLI's assembly:
    this tool does not know the high-defocus tool's table) adds a high-defocus image-shift
    row to a table file and says what it did, offered as ``high-defocus-is --table``."""
    p = sub.add_parser("image-shift", help="SerialEM image-shift matrix from a recorded series")
    _common(p)
    _shift_options(p)
    p.add_argument("--search-radius", type=float, help="peak search radius (binned px)")
    p.set_defaults(func=cmd_image_shift)

    p = sub.add_parser("stage-shift", help="SerialEM stage-to-camera matrix from a series")
    _common(p)
    _shift_options(p)
    p.add_argument("--search-radius", type=float, help="peak search radius (binned px)")
    p.set_defaults(func=cmd_stage_shift)

    p = sub.add_parser(
        "high-defocus-is", help="image-shift matrix at a defocus relative to focus (SerialEM)"
    )
    _common(p)
    p.add_argument(
        "defocused",
        nargs="?",
        help="the defocused series (else one series whose Defocus takes two values)",
    )
    _shift_options(p)
    if high_defocus_table is not None:
        p.add_argument(
            "--table",
            metavar="CSV",
            help="add the result to this high-defocus table (made if absent), as an "
            "'image shift' row beside the magnification calibrations",
        )
    p.set_defaults(func=cmd_high_defocus_is, add_to_table=high_defocus_table)

    p = sub.add_parser("beam-intensity", help="SerialEM beam-intensity table from a series")
    _common(p, images_needed=False)
    p.set_defaults(func=cmd_beam_intensity)

    p = sub.add_parser("dead-time", help="shutter dead time from counts against exposure")
    _common(p, images_needed=False)
    p.set_defaults(func=cmd_dead_time)
