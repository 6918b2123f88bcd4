"""The "Executor" control the widgets share: where heavy passes run, kept between sessions."""

from __future__ import annotations

from magicgui import widgets

from ..engine import pass_source as engine_pass_source
from ..errors import EmcalError
from ..settings import load_settings, save_setting
from .common import commit_on_enter

__all__ = ["executor_field", "pass_source"]


def executor_field(status) -> widgets.LineEdit:
    """A field holding ``local``, ``inline``, ``threads`` or ``tcp://host:port``; a valid
    change is saved at once (every widget and the next session use it)."""
    field = widgets.LineEdit(
        label="Executor",
        value=load_settings()["executor"],
        tooltip="where full passes run: local (this process), inline, "
        "threads (LiberTEM), or a dask scheduler tcp://host:port; applies on Enter",
    )

    def changed(value):
        try:
            save_setting("executor", value)
        except EmcalError as exc:
            status.value = str(exc)
        else:
            status.value = f"full passes now run on: {value or 'local'}"

    commit_on_enter(field, changed)
    return field


def pass_source(layer, executor: str):
    """What a pass reads (:func:`napari_emcal.engine.pass_source`): on a LiberTEM executor
    the ``.npy`` file the layer came from when it holds the layer's frames (the workers open
    it), else the layer's (lazy) array. A layer may be changed after reading, so the file
    of another format is not vouched for."""
    source = layer.metadata.get("emcal", {}).get("source")
    return engine_pass_source(layer.data, source or None, executor)
