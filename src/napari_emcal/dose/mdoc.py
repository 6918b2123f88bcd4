"""SerialEM ``.mdoc`` files section by section, as the dose table needs them.

SerialEM writes its image metadata in IMOD's autodoc format (SerialEM help, "File Formats
and Other Documentation"): global ``key = value`` lines, then sections that begin with a
bracketed ``[type = name]`` line. An image file's ``.mdoc`` has one ``[ZValue = z]`` section
per image (z numbered from 0 in the order the images were saved) and, for a montage, a
``[MontSection = n]`` section for the whole of it; a frame stack's ``.mdoc`` has one
``[FrameSet = n]`` section; ``[T = ...]`` lines are titles. A frame-based tilt
series has both: the ``[FrameSet]`` section describes the one continuous camera exposure,
and each ``[ZValue]`` section a tilt cut from it (``FrameTSStartEndFrames``).

mdocfile (this project's reader for ``.mdoc`` elsewhere) turns the sections into one table
and drops which type each section is, its order in the file and repeated names, which is
exactly what the dose of a tilt series and of its frame set depends on. The format is
``key = value`` lines, so this module reads the sections itself, in one pass (a file of
20 000 sections in well under a second).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import IncompleteDataWarning, InvalidDataError

__all__ = ["MdocFile", "MdocSection", "read_mdoc"]

#: Section types that describe an image or a set of them (``MontSection``: a whole
#: montage, whose pieces are ``ZValue`` sections); others, such as SerialEM's ``[T = ...]``
#: titles, are not images.
IMAGE_SECTIONS = ("ZValue", "FrameSet", "MontSection")


@dataclass
class MdocSection:
    """One ``[kind = name]`` section: its keys and values as written (text)."""

    kind: str
    name: str
    values: dict[str, str] = field(default_factory=dict)
    line: int = 0

    def number(self, key: str) -> float | None:
        """The first number of ``key``'s value, or None when absent or not a number."""
        numbers = self.numbers(key)
        return numbers[0] if numbers else None

    def numbers(self, key: str) -> list[float]:
        """All numbers of ``key``'s value (``FrameTSStartEndFrames = 0 12`` gives two)."""
        text = self.values.get(key)
        if text is None:
            return []
        try:
            return [float(word) for word in text.split()]
        except ValueError:
            return []


@dataclass
class MdocFile:
    """A SerialEM ``.mdoc``: its global values and its image sections in file order."""

    path: Path
    globals: dict[str, str]
    sections: list[MdocSection]
    #: what was odd about the file (a truncated end...), also given as warnings
    notes: list[str] = field(default_factory=list)

    @property
    def is_montage(self) -> bool:
        return self.globals.get("Montage", "0").strip() == "1" or any(
            "PieceCoordinates" in s.values for s in self.sections
        )


def read_mdoc(path) -> MdocFile:
    """Read a SerialEM ``.mdoc``.

    Raises
    ------
    InvalidDataError
        The file cannot be read (or is not a regular file, or is larger than
        ``MAX_TEXT_BYTES``), or holds no ``[ZValue]`` or ``[FrameSet]`` section (not an
        image ``.mdoc``; the message says what was found instead).

    Warns
    -----
    IncompleteDataWarning
        The file ends inside a section (truncated: the last section has a line without a
        value, or fewer keys than the sections before it), once per file.
    """
    from .._files import MAX_TEXT_BYTES, check_readable

    path = Path(path)
    check_readable(path)  # no device, FIFO or folder
    try:
        size = path.stat().st_size
        if size > MAX_TEXT_BYTES:
            raise InvalidDataError(
                f"{path.name} is {size / 2**20:.0f} MiB: larger than any .mdoc "
                f"({MAX_TEXT_BYTES / 2**20:.0f} MiB at most)"
            )
        # SerialEM writes ASCII; a stray byte of another encoding (a navigator label) must
        # not refuse the whole file
        with open(path, "rb") as stream:
            text = stream.read(MAX_TEXT_BYTES + 1).decode("utf-8", errors="replace")
    except OSError as exc:
        raise InvalidDataError(f"cannot read {path}: {exc.strerror or exc}") from exc
    globals_: dict[str, str] = {}
    sections: list[MdocSection] = []
    current: dict[str, str] | None = globals_
    broken_last_line = False
    lines = text.splitlines()
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        broken_last_line = False
        if not line:
            continue
        if line.startswith("["):
            inner = line[1:-1] if line.endswith("]") else line[1:]
            kind, _, name = inner.partition("=")
            kind, name = kind.strip(), name.strip()
            if kind in IMAGE_SECTIONS:
                sections.append(MdocSection(kind, name, {}, number))
                current = sections[-1].values
            else:
                current = None  # a title: its own lines are not image values
            if not line.endswith("]"):
                broken_last_line = True
            continue
        key, equals, value = line.partition("=")
        if not equals or not value.strip():
            broken_last_line = True
            continue
        if current is not None:
            current[key.strip()] = value.strip()
    if not sections:
        found = "nothing" if not text.strip() else "no [ZValue] or [FrameSet] section"
        raise InvalidDataError(
            f"{path.name} holds {found}: not a SerialEM image .mdoc (no image to take a dose from)"
        )
    notes = []
    last = sections[-1]
    same_kind = [len(s.values) for s in sections[:-1] if s.kind == last.kind]
    typical = sorted(same_kind)[len(same_kind) // 2] if same_kind else 0
    if broken_last_line or (not text.endswith("\n") and len(last.values) < typical):
        notes.append(
            f"{path.name} ends inside section [{last.kind} = {last.name}] (line "
            f"{len(lines)}): the file looks truncated; that section's values may be incomplete"
        )
    elif typical and len(last.values) < typical // 2:
        notes.append(
            f"{path.name}: the last section [{last.kind} = {last.name}] has "
            f"{len(last.values)} values where the others have {typical}: the file may be "
            "truncated"
        )
    for note in notes:
        warnings.warn(note, IncompleteDataWarning, stacklevel=2)
    return MdocFile(path, globals_, sections, notes)
