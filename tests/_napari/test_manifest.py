from pathlib import Path

import numpy as np


def test_manifest_is_registered_and_valid():
    import npe2

    pm = npe2.PluginManager.instance()
    pm.discover()
    manifest = pm.get_manifest("napari-emcal")
    assert {w.display_name for w in manifest.contributions.widgets} >= {
        "Overfocus calibration", "Grating pixel size"}
    assert {s.key for s in manifest.contributions.sample_data} >= {"grating_image"}
    assert manifest.contributions.sample_data[0].key == "overfocus_grating"


def test_top_level_manifest_is_the_packaged_one():
    root = Path(__file__).resolve().parents[2]
    import napari_emcal

    packaged = Path(napari_emcal.__file__).parent / "napari.yaml"
    assert (root / "napari.yaml").read_text() == packaged.read_text()


def test_reader_returns_lazy_layer_with_contrast(tmp_path):
    import dask.array as da

    from napari_emcal._napari.contributions import get_reader

    np.save(tmp_path / "d.npy", np.ones((4, 4, 8, 8), np.uint8))
    reader = get_reader(str(tmp_path / "d.npy"))
    (data, kwargs, kind), = reader(str(tmp_path / "d.npy"))
    assert kind == "image" and isinstance(data, da.Array)
    assert kwargs["contrast_limits"] == (1.0, 2.0)
    assert get_reader(str(tmp_path / "notes.txt")) is None
