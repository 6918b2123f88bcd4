"""``emcal camera-length``: camera length, centre and elliptical distortion from a ring
pattern of a known polycrystalline standard."""

from __future__ import annotations

from ..cli.kit import (
    allow_dir_argument,
    history_arguments,
    positive_float,
    record_history,
    write_json,
)
from ..errors import InvalidParameterError

__all__ = ["add_parser", "instrument_values"]


def instrument_values(metadata: dict, beam_energy_kev=None, detector_pixel_um=None):
    """``(beam_energy eV, detector_pixel_size m, sources)``: typed values win, else the
    file's, each with where it came from.

    Raises
    ------
    InvalidParameterError
        A value neither typed nor recorded in the file.
    """
    from ..units import to_si

    recorded = (metadata or {}).get("instrument", {}).get("values", {})
    sources = {}
    if beam_energy_kev is not None:
        energy = to_si(beam_energy_kev, "keV")
        sources["beam_energy"] = "typed by the user"
    elif "beam_energy" in recorded:
        energy = float(recorded["beam_energy"]["value"])
        sources["beam_energy"] = recorded["beam_energy"].get("source", "the file")
    else:
        raise InvalidParameterError("the file records no beam energy: give it (--beam-energy-kev)")
    if detector_pixel_um is not None:
        pixel = to_si(detector_pixel_um, "um")
        sources["detector_pixel_size"] = "typed by the user"
    elif "detector_pixel_size" in recorded:
        pixel = float(recorded["detector_pixel_size"]["value"])
        sources["detector_pixel_size"] = recorded["detector_pixel_size"].get("source", "the file")
    else:
        raise InvalidParameterError(
            "the file records no detector pixel size: give it (--detector-pixel-um)"
        )
    return energy, pixel, sources


def _open_pattern(source: str, how: str):
    """A 2D pattern and its metadata: the image of a 2D file, or the mean (maximum) of a
    stack's or a 4D dataset's frames, in one lazy pass."""
    from ..io.readers import holds_4d

    if holds_4d(source):
        from ..io.readers import open_4d
        from .patterns import reduce_frames

        ds = open_4d(source)
        for note in ds.notes:
            print(f"note: {note}")
        print(f"frames      {tuple(ds.data.shape)}: the {how} pattern, one pass")
        return reduce_frames(ds.data, how), ds.metadata
    from ..io.images import open_image

    return open_image(source)


def camera_length_setting(metadata: dict, beam_energy: float) -> str:
    """The history's setting: the nominal camera length the file records and the energy."""
    from ..history import beam_setting

    nominal = (metadata or {}).get("instrument", {}).get("values", {}).get("camera_length")
    return beam_setting(
        nominal_camera_length_mm=float(nominal["value"]) * 1e3 if nominal else None,
        beam_energy_kev=float(beam_energy) / 1e3,
    )


def cmd_camera_length(args) -> int:
    """Calibrate the camera length from a ring pattern."""
    from . import calibrate_camera_length

    if args.source == "sample":
        from .sample import au_ring_pattern

        image, metadata = au_ring_pattern()
    else:
        image, metadata = _open_pattern(args.source, args.reduce)
    energy, pixel, sources = instrument_values(
        metadata, args.beam_energy_kev, args.detector_pixel_um
    )
    source = str(metadata.get("source", args.source))
    print(f"pattern     {source} {tuple(image.shape)}")
    if args.zone:
        from .spots import calibrate_spots

        result = calibrate_spots(
            image,
            standard=args.standard,
            zone=args.zone,
            beam_energy=energy,
            detector_pixel_size=pixel,
            saturation=args.saturation,
            sources=sources,
        )
    else:
        result = calibrate_camera_length(
            image,
            standard=args.standard,
            beam_energy=energy,
            detector_pixel_size=pixel,
            saturation=args.saturation,
            sources=sources,
        )
    for line in result.summary_lines():
        print(line)
    for name in ("beam_energy", "detector_pixel_size"):
        print(f"  {name}: {sources[name]}")
    for note in result.notes:
        print(f"note: {note}")
    if args.json:
        write_json(args.json, {"source": source, **result.to_json()})
    nominal = metadata.get("instrument", {}).get("values", {}).get("camera_length")
    if nominal:
        ratio = result.camera_length / float(nominal["value"])
        print(
            f"nominal     {float(nominal['value']) * 1e3:.1f} mm ({nominal.get('source', '')}): "
            f"calibrated / nominal = {ratio:.4f}"
        )
    record_history(
        args,
        "camera_length",
        *result.history_values(),
        setting=camera_length_setting(metadata, energy),
        source=source,
    )
    truth = metadata.get("ground_truth")
    if truth:
        print(
            f"  (sample ground truth: {truth['camera_length_m'] * 1e3:.3f} mm, ratio "
            f"{truth['ellipse_axis_ratio']:.4f} at {truth['ellipse_angle_deg']:.1f}°)"
        )
    return 0


def add_parser(sub) -> None:
    from .standards import STANDARDS

    p = sub.add_parser(
        "camera-length",
        help="camera length, centre and ellipticity from a polycrystalline ring pattern",
    )
    p.add_argument(
        "source",
        help="2D diffraction pattern (.tif, .dm3/.dm4, .emd, .ser, .mrc, .npy), a stack or 4D "
        "dataset (its mean pattern), or 'sample' for the simulated Au pattern",
    )
    allow_dir_argument(p)
    p.add_argument(
        "--standard",
        default="Au",
        help=f"the polycrystal: {', '.join(STANDARDS)}, or a d-spacing file (.D, Å)",
    )
    p.add_argument(
        "--beam-energy-kev",
        type=positive_float,
        metavar="KEV",
        help="beam energy in keV (default: the file's)",
    )
    p.add_argument(
        "--detector-pixel-um",
        type=positive_float,
        metavar="UM",
        help="physical detector pixel in µm (default: the file's)",
    )
    p.add_argument(
        "--saturation",
        type=positive_float,
        help="count at which the detector saturates (default: the maximum, when shared)",
    )
    p.add_argument(
        "--zone",
        choices=["001", "011"],
        help="a single crystal's spot pattern along this zone axis of the (cubic) standard, "
        "instead of rings",
    )
    p.add_argument(
        "--reduce",
        choices=["mean", "max"],
        default="mean",
        help="for a stack or 4D dataset: calibrate on the mean (default) or maximum pattern",
    )
    p.add_argument("--json", metavar="PATH", help="write the result as JSON ('-': stdout)")
    history_arguments(p)
    p.set_defaults(func=cmd_camera_length)
