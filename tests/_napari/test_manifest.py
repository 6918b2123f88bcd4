from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture(scope="module")
def manifest():
    import npe2

    pm = npe2.PluginManager.instance()
    pm.discover()
    return pm.get_manifest("napari-emcal")


def test_installed_manifest_validates_with_its_imports(manifest):
    # every python_name of every contribution must import and resolve
    manifest.validate_imports()


def readme_tools() -> list[list[str]]:
    """The cells of the README's table of tools (tool, answers, dock, menu action, CLI)."""
    text = README.read_text(encoding="utf-8")
    table = text.split("## The tools", 1)[1].split("\n\n", 2)[1]
    rows = [line.strip("|").split("|") for line in table.splitlines()[2:]]
    return [[cell.strip() for cell in row] for row in rows]


def test_manifest_contributes_what_the_readme_lists(manifest):
    rows = readme_tools()
    docks = {row[2].strip("*") for row in rows}
    menus = {row[3].strip("*") for row in rows if row[3] != "—"}
    contributions = manifest.contributions
    assert len(rows) == len(contributions.widgets) == 7
    assert docks == {w.display_name for w in contributions.widgets}
    titles = {c.id: c.title for c in contributions.commands}
    in_menus = {
        titles[item.command]
        for items in contributions.menus.values()
        for item in items
        if hasattr(item, "command")
    }
    assert menus == in_menus
    # the overfocus sample comes first: it is the one the demo opens
    assert contributions.sample_data[0].key == "overfocus_grating"


def test_reader_returns_lazy_layer_with_contrast(tmp_path):
    import dask.array as da

    from napari_emcal._napari.contributions import get_reader

    np.save(tmp_path / "d.npy", np.ones((4, 4, 8, 8), np.uint8))
    reader = get_reader(str(tmp_path / "d.npy"))
    ((data, kwargs, kind),) = reader(str(tmp_path / "d.npy"))
    assert kind == "image" and isinstance(data, da.Array)
    assert kwargs["contrast_limits"] == (1.0, 2.0)
    assert get_reader(str(tmp_path / "notes.txt")) is None
