"""``emcal live``: the overfocus images of acquisitions as a detector delivers them."""

from __future__ import annotations

from pathlib import Path

from ..cli.kit import positive_float, positive_int
from ..errors import InvalidParameterError
from ..units import format_si

__all__ = ["add_parser"]


def _host_port(text: str) -> tuple[str, int | None]:
    host, _, port = text.rpartition(":") if ":" in text else (text, "", "")
    if not host:
        raise InvalidParameterError(f"--merlin takes HOST[:DATA_PORT]; got {text!r}")
    try:
        return host, int(port) if port else None
    except ValueError:
        raise InvalidParameterError(
            f"--merlin: the data port must be a number; got {port!r}"
        ) from None


def cmd_live_overfocus(args) -> int:
    import numpy as np

    from ..engine.live import LiveSource, acquisitions
    from . import TwinParams
    from .cli import write_outputs
    from .images import OverfocusPass
    from .sharpness import blur

    if args.free and not args.calibrate:
        raise InvalidParameterError("--free says what --calibrate determines: add --calibrate")
    free = tuple(args.free or ("scan_rotation", "flip_y", "overfocus"))
    host, data_port = _host_port(args.merlin)
    source = LiveSource("merlin", host, data_port, args.control_port, tuple(args.scan_shape))
    params = TwinParams.load(args.params)  # a stream holds no lengths: never a default
    print(f"detector    {source.describe()}, scan {tuple(args.scan_shape)}")
    for n, acquired in enumerate(
        acquisitions(
            source,
            [OverfocusPass(params)],
            count=args.acquisitions,
            timeout=args.timeout,
            keep_frames=bool(args.calibrate or args.save),
        ),
        start=1,
    ):
        images = acquired.results[0]
        detector = images["aperture_sum"].shape
        sharp = blur(images["shifted_sum"], params, detector)
        frames = acquired.scan_shape[0] * acquired.scan_shape[1]
        print(
            f"acquisition {n}: {frames} frames of {detector[0]} x {detector[1]} in "
            f"{acquired.seconds:.2f} s; blur of shifted_sum {sharp:.4f}"
        )
        suffix = f"_{n}" if args.acquisitions > 1 else ""
        if args.save:
            if acquired.frames is None:
                print("note: the acquisition was too large to keep: not saved")
            else:
                path = Path(args.save)
                path = path.with_name(f"{path.stem}{suffix}.npy")
                from .._files import atomic_write

                frames = acquired.frames
                atomic_write(path, lambda temporary, frames=frames: np.save(temporary, frames))
                print(f"saved       {path} (this plugin and LiberTEM read it)")
        if args.calibrate and acquired.frames is not None:
            from . import calibrate

            result = calibrate(acquired.frames, params, free=free)
            p, sigma = result.params, result.uncertainty
            print(
                f"calibrated  rotation {p.scan_rotation:.3f}° ± "
                f"{sigma.get('scan_rotation', float('nan')):.3f}°, flip {p.flip_y}, "
                f"overfocus {format_si(p.overfocus, 'µm', 4)}"
            )
            params = p
        if args.out:
            out = Path(args.out) / (f"acquisition{suffix}" if suffix else "")
            write_outputs(out, images, params, source.describe(), acquired.seconds, sharp)
    return 0


def add_parser(sub) -> None:
    from .calibrate import FREE_PARAMETERS

    p = sub.add_parser("live", help="process acquisitions as a detector delivers them")
    which = p.add_subparsers(dest="what", required=True)
    q = which.add_parser("overfocus", help="the overfocus images of each acquisition")
    q.add_argument(
        "--merlin",
        required=True,
        metavar="HOST[:DATA_PORT]",
        help="a Quantum Detectors Merlin (or libertem-live-mib-sim); data port 6342",
    )
    q.add_argument("--control-port", type=positive_int, help="Merlin control port (6341)")
    q.add_argument(
        "--scan-shape",
        type=positive_int,
        nargs=2,
        required=True,
        metavar=("NY", "NX"),
        help="scan positions of each acquisition",
    )
    q.add_argument(
        "--params", required=True, help="twin parameters JSON: the lengths a stream does not carry"
    )
    q.add_argument("--out", help="folder for the images (one subfolder per acquisition)")
    q.add_argument(
        "--calibrate",
        action="store_true",
        help="calibrate on each acquisition's frames and use the result next",
    )
    q.add_argument("--free", nargs="+", choices=FREE_PARAMETERS, help="what --calibrate determines")
    q.add_argument("--save", metavar="PATH", help="keep each acquisition as .npy")
    q.add_argument(
        "--acquisitions", type=positive_int, default=1, help="acquisitions to process (default 1)"
    )
    q.add_argument(
        "--timeout",
        type=positive_float,
        default=30.0,
        help="seconds to wait for each acquisition to start",
    )
    q.set_defaults(func=cmd_live_overfocus)
