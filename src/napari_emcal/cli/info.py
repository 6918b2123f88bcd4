"""What any supported file records about the instrument (``emcal info``): 4D datasets
and 2D images through this project's readers (metadata only for 4D data), SerialEM
``.mdoc`` files section by section."""

from __future__ import annotations

from pathlib import Path

from ..errors import InvalidDataError
from ..io.instrument import InstrumentMetadata
from ..units import convert

__all__ = ["read_instrument"]


def read_instrument(path) -> tuple[InstrumentMetadata, str]:
    """The instrument values a file records and what the file is (``"4D STEM"``,
    ``"2D image"``, ``"SerialEM log"``).

    Raises
    ------
    InvalidDataError
        The file cannot be read, or is of no format this project reads.
    """
    path = Path(path)
    if not path.exists():
        raise InvalidDataError(f"No such file: {path}")
    if path.suffix.lower() == ".mdoc":
        return _mdoc(path), "SerialEM log"
    from ..io.readers import format_of, open_4d

    if format_of(path) is not None:
        try:
            dataset = open_4d(path)
        except InvalidDataError as exc:
            if "3D or 4D" not in str(exc):
                raise
        else:
            return dataset.instrument, "4D STEM"
    from ..io.images import open_image

    _, metadata = open_image(path)
    return InstrumentMetadata.from_json(metadata["instrument"], path), "2D image"


def _mdoc(path: Path) -> InstrumentMetadata:
    """The first section's values (the dose table reads every section)."""
    from ..dose.metadata import rows_from_file  # the dose table reads .mdoc sections

    rows = rows_from_file(path)
    inst = InstrumentMetadata(path)
    if not rows:
        inst.note(f"{path.name} holds no section")
        return inst
    first = rows[0]
    where = f"section {first['image']}"
    for name, column, unit in (
        ("beam_energy", "voltage_kv", "keV"),
        ("spot", "spot", None),
        ("magnification", "magnification", None),
        ("exposure_time", "exposure_s", "s"),
        ("pixel_size", "pixel_size_nm", "nm"),
        ("acquisition_time", "time", None),
    ):
        if column not in first:
            continue
        value = first[column]
        if unit is not None:
            value = convert(
                float(value), unit, "eV" if unit == "keV" else "m" if unit == "nm" else unit
            )
        inst.set_from_file(
            name, (value, value) if name == "pixel_size" else value, f"{where}: {column}"
        )
    inst.note(f"{path.name}: {len(rows)} section(s); the values of the first are shown")
    return inst


def add_parser(sub) -> None:
    """``emcal info PATH [--json] [--allow-dir DIR]``."""
    from .kit import allow_dir_argument

    p = sub.add_parser("info", help="what a file records about the instrument, with sources")
    p.add_argument("source", help="4D STEM file, 2D image or SerialEM .mdoc")
    p.add_argument(
        "--json",
        metavar="PATH",
        help="write {values: {name: {value, unit, source}}, notes} (SI units)",
    )
    allow_dir_argument(p)
    p.set_defaults(func=cmd_info)


def cmd_info(args) -> int:
    from .kit import write_json

    inst, kind = read_instrument(args.source)
    print(f"{Path(args.source).name}: {kind}")
    lines = inst.lines()
    print("\n".join(f"  {line}" for line in lines) if lines else "  (no instrument values)")
    for note in inst.notes:
        print(f"note: {note}")
    if args.json:
        write_json(args.json, {"source": str(args.source), "kind": kind, **inst.to_json()})
    return 0
