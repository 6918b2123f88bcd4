"""``emcal report``: a self-contained HTML calibration report (images inline)."""

from __future__ import annotations

import numpy as np

__all__ = ["add_parser", "sample_sections"]


def sample_sections() -> tuple[list, list[str]]:
    """Each tool run on its sample, as report sections; and the history comparisons."""
    from .. import samples
    from ..dose import DoseTable
    from ..dose.metadata import rows_from_layer
    from ..grating import find_pixel_size
    from ..highdefocus.cli import sample_lines
    from ..highdefocus.measure import aligned_far, measure
    from ..history import compare_with_history, magnification_setting
    from ..overfocus import TwinParams, calibrate, compute
    from ..overfocus.calibrate import history_values
    from ..report import (
        dose_section,
        high_defocus_section,
        overfocus_section,
        pixel_size_section,
    )

    sections, compared = [], []
    data, metadata = samples.overfocus_grating()
    start = TwinParams.from_metadata(metadata)
    result = calibrate(data, start)
    images = compute(data, result.params, outputs=["shifted_sum", "point"])
    nominal = "the sample's nominal twin"
    provenance = dict.fromkeys(
        ("scan_pixel_size", "camera_length", "detector_pixel_size", "cy", "cx"), nominal
    )
    sections.append(overfocus_section(result, images, "simulated grating", provenance))
    compared.append(compare_with_history("overfocus", *history_values(result)))

    image, metadata = samples.grating_image()
    found = find_pixel_size(image, mode="grating")
    magnification = metadata.get("magnification")
    sections.append(pixel_size_section(found, "simulated grating image", magnification))
    setting = magnification_setting(magnification)
    compared.append(compare_with_history("pixel_size", *found.history_values(), setting=setting))

    (near, _), (far, far_metadata) = samples.high_defocus_pair()
    near_line, far_line = sample_lines(far_metadata)
    pair = measure(near, far, np.reshape(near_line, (2, 2)), np.reshape(far_line, (2, 2)))
    aligned = aligned_far(far, pair, near.shape)
    sections.append(high_defocus_section(pair, near, aligned, ("near focus", "defocus -150 µm")))

    stack, metadata = samples.in_situ_series()
    table = DoseTable(budget=50.0)
    table.calibration.merge(metadata.get("current_calibration"))
    for row in rows_from_layer("in situ series", stack.shape, metadata):
        table.add(**row)
    sections.append(dose_section(table))
    return sections, compared


def cmd_report(args) -> int:
    from ..history import History
    from ..report import history_section, write_report

    sections, compared = sample_sections() if args.samples else ([], [])
    entries = History().entries(args.tool, since=args.since)
    sections.append(history_section(entries, compared))
    path = write_report(args.out, sections, title=args.title)
    print(f"wrote {path}: {len(sections)} section(s), {len(entries)} kept calibration(s)")
    for line in compared:
        print(line)
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="an HTML calibration report (images inline)")
    p.add_argument("--out", required=True, metavar="PATH.html", help="the page to write")
    p.add_argument(
        "--samples",
        action="store_true",
        help="calibrate the four samples and put each tool's result in the report",
    )
    p.add_argument("--tool", help="history entries of one tool only")
    p.add_argument("--since", metavar="DATE", help="history entries since (ISO 8601)")
    p.add_argument("--title", default="Calibration report", help="the page's title")
    p.set_defaults(func=cmd_report)
