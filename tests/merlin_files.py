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
