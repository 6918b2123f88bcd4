"""The documentation cannot lie: every ``emcal`` command and every Python block shown in the
README and in ``docs/`` runs, in the order a page shows it, and succeeds.

Shell blocks (```` ```bash ````): each line that starts with ``emcal`` is run through the
CLI's ``main`` in a temporary folder shared by the page's blocks, so a page may write a file
with one command and read it with the next. ``$EMCAL_REAL_DATA`` stands for the folder of
real instrument files (``tests/conftest.py``); a page that uses it is skipped, with the
reason, where the folder is absent. Python blocks (```` ```python ````) of a page run in one
namespace, in the same folder, after the page's shell lines that precede them.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest

from .conftest import REAL_DATA

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^```(\w+)[^\n]*\n(.*?)^```", re.S | re.M)


def blocks(page: Path):
    """(language, text) of each fenced block of a page, in order."""
    return [(m.group(1), m.group(2)) for m in FENCE.finditer(page.read_text(encoding="utf-8"))]


def steps(page: Path):
    """("shell", argv line) and ("python", source) in the page's order."""
    out = []
    for language, text in blocks(page):
        if language == "bash":
            for line in text.splitlines():
                command = line.split("  #")[0].strip()
                if command.startswith("emcal "):
                    out.append(("shell", command))
        elif language == "python":
            out.append(("python", text))
    return out


DOC_PAGES = [page for page in PAGES if steps(page)]


def test_the_documentation_shows_runnable_examples():
    names = {page.relative_to(ROOT).as_posix() for page in DOC_PAGES}
    for guide in ("overfocus", "grating", "high-defocus", "dose", "dataset-check"):
        assert f"docs/guide/{guide}.md" in names


@pytest.mark.parametrize("page", DOC_PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_documented_command_runs(page, tmp_path, monkeypatch, capsys):
    from napari_emcal.cli import main

    text = page.read_text(encoding="utf-8")
    if "EMCAL_REAL_DATA" in text and not REAL_DATA.exists():
        pytest.skip(f"{page.name} uses the real data files, not available in {REAL_DATA}")
    monkeypatch.setenv("EMCAL_REAL_DATA", str(REAL_DATA))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__doc_example__"}
    for kind, step in steps(page):
        if kind == "shell":
            argv = [os.path.expandvars(word) for word in shlex.split(step)[1:]]
            status = main(argv)
            captured = capsys.readouterr()
            assert status == 0, f"{page.name}: `{step}` exited {status}: {captured.err}"
        else:
            exec(compile(step, f"<{page.name}>", "exec"), namespace)
