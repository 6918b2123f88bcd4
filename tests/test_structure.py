"""The package's shape: no import circle, no tool importing another tool, only the
gatherers (the ``cli`` package's assembly and commands, ``_napari``, ``samples``) importing
tools, no Qt or napari in the core, a small package root. Imports inside functions count."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import napari_emcal

PACKAGE = Path(napari_emcal.__file__).parent
TOOLS = ("overfocus", "grating", "highdefocus", "dose", "dataset_check", "diffraction", "serialem")
GLUE = ("_qt", "_napari")
#: The modules that know every tool: the CLI's assembly and its own commands, the napari
#: manifest's commands and the list of samples. The CLI kit is what tools import: no tool.
GATHERERS = ("napari_emcal.cli", "napari_emcal._napari", "napari_emcal.samples")
CLI_KIT = "napari_emcal.cli.kit"
#: At most this many modules at the package root (the rest lives in tools and packages).
ROOT_MODULES = 14
#: No module longer than this many lines: a longer one holds several stages.
MAX_LINES = 600


def _module_name(path: Path) -> str:
    parts = ("napari_emcal",) + path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Every package module ``name`` imports, at module level or inside functions."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            # `from pkg import submodule` imports the submodule
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(t for t in targets if t in known)
    found.discard(name)
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, set(modules)) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, result = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return result


def _is_ancestor(a: str, b: str) -> bool:
    return b.startswith(a + ".")


def test_no_import_circle(graph):
    # a package importing its own submodules (re-exports) is not a circle; a submodule
    # importing its package back would be
    edges = {v: {w for w in ws if not _is_ancestor(v, w)} for v, ws in graph.items()}
    assert _cycles(edges) == []


def test_the_cycle_finder_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def _tool(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in TOOLS else None


def test_no_tool_imports_another_tool(graph):
    crossing = [
        (v, w)
        for v, ws in graph.items()
        for w in ws
        if _tool(v) and _tool(w) and _tool(v) != _tool(w)
    ]
    assert crossing == []


def test_core_imports_no_glue(graph):
    def is_glue(module):
        return any(part in GLUE for part in module.split("."))

    assert [(v, w) for v, ws in graph.items() for w in ws if not is_glue(v) and is_glue(w)] == []


def _is_gatherer(module: str) -> bool:
    return module != CLI_KIT and any(module == g or module.startswith(g + ".") for g in GATHERERS)


def test_imports_inside_functions_are_seen(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("def f():\n    from .grating import find\n    import napari_emcal.dose\n")
    known = {"napari_emcal.grating", "napari_emcal.grating.find", "napari_emcal.dose"}
    assert _imports("napari_emcal.m", path, known) == known


def test_only_the_gatherers_import_tools(graph):
    assert [
        (v, w)
        for v, ws in graph.items()
        if not _tool(v) and not _is_gatherer(v)
        for w in ws
        if _tool(w)
    ] == []


def test_no_tool_imports_a_gatherer(graph):
    # a tool that imported a gatherer would import every other tool through it
    assert [(v, w) for v, ws in graph.items() if _tool(v) for w in ws if _is_gatherer(w)] == []


def test_the_cli_kit_imports_no_tool(graph):
    assert [w for w in graph[CLI_KIT] if _tool(w)] == []


def test_package_root_is_small():
    root = sorted(p.stem for p in PACKAGE.glob("*.py"))
    assert len(root) <= ROOT_MODULES, root


def test_no_module_is_too_long():
    long = {
        name: n
        for name, path in _modules().items()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}


def test_core_imports_no_qt_or_napari():
    offenders = []
    for name, path in _modules().items():
        if any(part in GLUE for part in name.split(".")):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and not getattr(node, "level", 0):
                names = (
                    [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module or ""]
                )
                top = {n.split(".")[0] for n in names}
                if top & {
                    "qtpy",
                    "PyQt5",
                    "PyQt6",
                    "PySide2",
                    "PySide6",
                    "napari",
                    "magicgui",
                    "superqt",
                }:
                    offenders.append((name, sorted(top)))
    assert offenders == []


def test_engine_knows_no_tool(graph):
    assert [
        (v, w)
        for v, ws in graph.items()
        if v.startswith("napari_emcal.engine")
        for w in ws
        if _tool(w)
    ] == []
