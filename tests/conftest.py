import os
from pathlib import Path

import pytest

#: Real instrument files: $EMCAL_REAL_DATA, else shared/data/real beside the checkout
#: (absent in a user's clone: those tests then skip).
REAL_DATA = Path(
    os.environ.get("EMCAL_REAL_DATA")
    or Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"
)


def real_file(relative: str) -> Path:
    """Path of a real test file, or skip the test with the reason when it is absent."""
    path = REAL_DATA / relative
    if not path.exists():
        pytest.skip(f"real data file {relative} not available in {REAL_DATA} (set EMCAL_REAL_DATA)")
    return path


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # napari's make_napari_viewer fixture reads item.rep_call to decide on leak checks
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture(autouse=True)
def _autosave_in_tmp(tmp_path, monkeypatch):
    """Widgets that autosave write into the test's folder, never the user's data folder."""
    monkeypatch.setenv("NAPARI_EMCAL_AUTOSAVE", str(tmp_path / "autosave" / "dose_table.json"))
    # and the calibration history too
    monkeypatch.setenv("NAPARI_EMCAL_HISTORY", str(tmp_path / "history.sqlite"))


@pytest.fixture(autouse=True)
def _settings_in_tmp(tmp_path, monkeypatch):
    """Persistent settings go to the test's folder, never the user's configuration."""
    monkeypatch.setenv("NAPARI_EMCAL_SETTINGS", str(tmp_path / "settings" / "settings.json"))
