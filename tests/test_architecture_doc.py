"""docs/architecture.md names only packages and modules that exist."""

import re
from pathlib import Path

import napari_emcal

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path(napari_emcal.__file__).parent
DOC = ROOT / "docs" / "architecture.md"


def _tree_paths(text: str) -> list[Path]:
    """The paths of the layout block: one entry per line, nested by indentation."""
    block = re.search(r"```\nnapari_emcal/\n(.*?)```", text, re.S).group(1)
    paths, parents = [], {}
    for line in block.splitlines():
        match = re.match(r"( *)(\S+)(?: {2,}|$)", line)
        if not match or len(match.group(1)) % 2 or not re.match(r"[\w.]+/?$", match.group(2)):
            continue  # a description's continuation line
        depth = len(match.group(1)) // 2
        name = match.group(2).rstrip("/")
        path = (parents.get(depth - 1, PACKAGE) if depth > 1 else PACKAGE) / name
        parents[depth] = path
        paths.append(path)
    return paths


def test_every_package_and_module_in_the_layout_exists():
    paths = _tree_paths(DOC.read_text(encoding="utf-8"))
    assert len(paths) > 20
    assert [p for p in paths if not p.exists()] == []


def test_every_module_named_in_the_text_exists():
    text = DOC.read_text(encoding="utf-8")
    dotted = set(re.findall(r"`(napari_emcal(?:\.\w+)+)", text))
    missing = []
    for name in dotted:
        parts = name.split(".")[1:]
        for n in range(len(parts), 0, -1):  # the longest prefix that is a module
            base = PACKAGE.joinpath(*parts[:n])
            if base.with_suffix(".py").exists() or (base / "__init__.py").exists():
                break
        else:
            missing.append(name)
    assert dotted and missing == []


def test_the_layout_lists_every_package_and_root_module():
    listed = {p.relative_to(PACKAGE).parts[0] for p in _tree_paths(DOC.read_text("utf-8"))}
    actual = {p.name for p in PACKAGE.iterdir() if p.suffix == ".py" and p.stem != "__init__"}
    actual |= {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert actual - listed == set()
