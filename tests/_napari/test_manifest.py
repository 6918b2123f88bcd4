import re
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


def test_manifest_contributes_what_the_readme_lists(manifest):
    text = README.read_text(encoding="utf-8")
    widgets = set(re.findall(r'Widget "([^"]+)"', text))
    samples = set(re.findall(r'sample "([^"]+)"', text))
    menus = set(re.findall(r"\*Layers > Measure > ([^*]+)\*", text))
    assert len(widgets) == 7 and len(samples) >= 4 and len(menus) == 6
    contributions = manifest.contributions
    assert widgets <= {w.display_name for w in contributions.widgets}
    assert samples <= {s.display_name for s in contributions.sample_data}
    titles = {c.id: c.title for c in contributions.commands}
    in_menus = {
        titles[item.command]
        for items in contributions.menus.values()
        for item in items
        if hasattr(item, "command")
    }
    assert {m.strip() for m in menus} <= in_menus
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
