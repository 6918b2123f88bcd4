"""Persistent settings: saved atomically, validated, defaults when missing or broken."""

import pytest

from napari_emcal.errors import InvalidParameterError
from napari_emcal.settings import load_settings, save_setting, settings_path


def test_executor_setting_persists():
    assert load_settings()["executor"] == "local"
    save_setting("executor", "tcp://127.0.0.1:8786")
    assert load_settings()["executor"] == "tcp://127.0.0.1:8786"
    with pytest.raises(InvalidParameterError):
        save_setting("executor", "somewhere")
    assert load_settings()["executor"] == "tcp://127.0.0.1:8786"  # unchanged


def test_broken_file_gives_defaults():
    settings_path().parent.mkdir(parents=True, exist_ok=True)
    settings_path().write_text("{not json")
    assert load_settings()["executor"] == "local"
    settings_path().write_text('{"executor": "mars"}')
    assert load_settings()["executor"] == "local"
