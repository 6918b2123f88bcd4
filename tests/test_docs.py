"""The documentation cannot lie: every ``emcal`` command and every Python block shown in the
README and in ``docs/`` runs, in the order a page shows it, and succeeds.

Shell blocks (```` ```bash ````): each line that starts with ``emcal`` is run through the
CLI's ``main`` in a temporary folder shared by the page's blocks, so a page may write a file
with one command and read it with the next. ``$EMCAL_REAL_DATA`` stands for the folder of
real instrument files; a page that uses one is skipped, saying which file and how to get it,
where that file is absent (``tests/conftest.py``'s ``real_file``). Python blocks
(```` ```python ````) of a page run in one namespace, in the same folder, after the page's
shell lines that precede them.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from .conftest import real_file

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^```(\w+)[^\n]*\n(.*?)^```", re.S | re.M)
REAL_PATH = re.compile(r"\$EMCAL_REAL_DATA/([^\"'\s]+)")


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
WITH_REAL_FILES = [page for page in DOC_PAGES if REAL_PATH.search(page.read_text("utf-8"))]
WITHOUT_REAL_FILES = [page for page in DOC_PAGES if page not in WITH_REAL_FILES]


def page_id(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


def test_the_documentation_shows_runnable_examples():
    names = {page_id(page) for page in DOC_PAGES}
    for guide in (
        "overfocus",
        "grating",
        "high-defocus",
        "dose",
        "dataset-check",
        "diffraction",
        "serialem",
    ):
        assert f"docs/guide/{guide}.md" in names


def run_page(page: Path, real_data: Path | None, capsys) -> None:
    """Every step of a page, in order, in the current folder."""
    from napari_emcal.cli import main

    namespace: dict = {"__name__": "__doc_example__"}
    for kind, step in steps(page):
        if kind == "shell":
            words = shlex.split(step)[1:]
            if real_data is not None:
                words = [word.replace("$EMCAL_REAL_DATA", str(real_data)) for word in words]
            status = main(words)
            captured = capsys.readouterr()
            assert status == 0, f"{page.name}: `{step}` exited {status}: {captured.err}"
        else:
            exec(compile(step, f"<{page.name}>", "exec"), namespace)


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("page", WITHOUT_REAL_FILES, ids=page_id)
def test_every_documented_command_runs(page, in_tmp, capsys):
    run_page(page, None, capsys)


@pytest.mark.parametrize("page", WITH_REAL_FILES, ids=page_id)
def test_every_documented_command_on_real_files_runs(page, in_tmp, capsys):
    relatives = REAL_PATH.findall(page.read_text("utf-8"))
    located = {relative: real_file(relative) for relative in relatives}  # skips when absent
    first, path = next(iter(located.items()))
    folder = Path(str(path)[: -len(first)].rstrip("/"))
    assert all(folder / relative == path for relative, path in located.items()), (
        f"{page.name}: its real files must lie in one folder"
    )
    run_page(page, folder, capsys)
