"""Write a Quantum Detectors Merlin recording (.hdr and .mib) of given frames, so that
LiberTEM-live's simulator can replay simulated data as the detector would send it.

The frame headers follow the real recording's (``../shared/data/real/4d/merlin_4x2``):
``MQ1,<frame number>,<header bytes>,<chips>,<width>,<height>,<dtype>,...``, 384 bytes,
then the pixels, big-endian. Only what the readers use is changed: the frame number, the
frame size and the pixel type; the acquisition header gets the frame count.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

HEADER_BYTES = 384
#: The twin the live tests compute the real 4 x 2 recording's images with (256² frames).
REPLAY_PARAMS = dict(
    overfocus=1e-6,
    scan_pixel_size=1e-9,
    camera_length=0.15,
    detector_pixel_size=55e-6,
    cy=128.0,
    cx=128.0,
    scan_rotation=20.0,
)
TYPES = {np.dtype(np.uint8): "U08", np.dtype(np.uint16): "U16"}


def write_merlin(template_hdr: Path, frames: np.ndarray, stem: Path) -> Path:
    """Write ``frames`` (scan_y, scan_x, det_y, det_x; uint8 or uint16) as ``stem``.hdr and
    ``stem``.mib, with the real recording ``template_hdr`` as the model; returns the .hdr."""
    frames = np.asarray(frames)
    kind = TYPES[frames.dtype]
    sy, sx, dy, dx = frames.shape
    template_mib = template_hdr.with_suffix(".mib")
    model = template_mib.read_bytes()[:HEADER_BYTES].decode("ascii")
    fields = model.split(",")
    fields[4], fields[5], fields[6] = f"{dx:04d}", f"{dy:04d}", kind
    big_endian = frames.astype(frames.dtype.newbyteorder(">")).reshape(sy * sx, dy, dx)
    stem = Path(stem)
    with open(stem.with_suffix(".mib"), "wb") as out:
        for number, frame in enumerate(big_endian, start=1):
            fields[1] = f"{number:06d}"
            header = ",".join(fields).encode("ascii")
            out.write(header[:HEADER_BYTES].ljust(HEADER_BYTES, b"\0"))
            out.write(frame.tobytes())
    text = template_hdr.read_text(errors="replace")
    text = re.sub(r"(Frames in Acquisition \(Number\):\s*)\d+", rf"\g<1>{sy * sx}", text)
    depth = 8 if kind == "U08" else 12
    text = re.sub(r"(Counter Depth \(number\):\s*)\d+", rf"\g<1>{depth}", text)
    hdr = stem.with_suffix(".hdr")
    hdr.write_text(text)
    return hdr


def simulated_recording(template_hdr: Path, stem: Path, scan=(32, 32), detector=(64, 64)):
    """A simulated overfocused scan (known twin) written as a Merlin recording:
    (the .hdr, the frames, the true twin)."""
    from napari_emcal.overfocus import TwinParams, simulate
    from napari_emcal.specimens import detailed_specimen

    truth = TwinParams(
        overfocus=1.2e-6,
        scan_pixel_size=1e-9,
        camera_length=0.15,
        detector_pixel_size=55e-6,
        cy=(detector[0] - 1) / 2 + 0.1,
        cx=(detector[1] - 1) / 2 + 0.8,
        scan_rotation=37.0,
        flip_y=True,
        semiconv=12e-3,
    )
    specimen = detailed_specimen((max(scan) * 3 + 64,) * 2, feature_size=2.0, seed=4)
    frames = simulate(specimen, scan, detector, truth, dose=2e4, seed=4).astype(np.uint16)
    return write_merlin(template_hdr, frames, stem), frames, truth
