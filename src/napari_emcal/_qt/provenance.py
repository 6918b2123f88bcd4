"""Where each pre-filled value of a widget came from, shown on the control itself.

A control filled from a file says so in its tooltip (with the file's key); one the user
changed says "typed"; one that still holds the widget's default is marked in its label
("⚠ ... (default)") until the user changes or confirms it, so that a default never passes
for a value the file holds (docs/conventions.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import contextmanager

__all__ = ["FieldSources", "instrument_sources"]

DEFAULT = "default (not in the file)"
TYPED = "typed by the user"
MARK = "⚠ "


def instrument_sources(metadata: Mapping | None) -> dict[str, str]:
    """The source of each instrument value in a layer's (or reader's) metadata, by name."""
    document = (metadata or {}).get("instrument") or {}
    return {name: entry.get("source", "") for name, entry in document.get("values", {}).items()}


class FieldSources:
    """The sources of a widget's controls, by name; controls are magicgui widgets."""

    def __init__(self, fields: Mapping[str, object]):
        self.fields = dict(fields)
        self._labels = {name: str(w.label) for name, w in self.fields.items()}
        self._tips = {name: (getattr(w, "tooltip", "") or "") for name, w in self.fields.items()}
        self.sources: dict[str, str] = dict.fromkeys(self.fields, DEFAULT)
        self._quiet = False
        for name, widget in self.fields.items():
            widget.changed.connect(lambda *_, name=name: self._edited(name))
        self._show_all()

    def _edited(self, name: str) -> None:
        if not self._quiet:
            self.set(name, TYPED)

    def set(self, name: str, source: str) -> None:
        """Record where the value of ``name`` came from and show it."""
        self.sources[name] = source
        self._show(name)

    def filled(self, sources: Mapping[str, str | None]) -> None:
        """After a programmatic fill: ``sources[name]`` for the controls filled, every other
        control back to its default. Value changes made meanwhile are not "typed"."""
        for name in self.fields:
            self.set(name, sources.get(name) or DEFAULT)

    @contextmanager
    def quiet(self):
        """A context in which changes are the program's, not the user's."""
        quiet, self._quiet = self._quiet, True
        try:
            yield
        finally:
            self._quiet = quiet

    def confirm(self) -> None:
        """The user accepts the defaults shown: they become typed values."""
        for name, source in self.sources.items():
            if source == DEFAULT:
                self.set(name, TYPED)

    def defaults(self) -> list[str]:
        return [name for name, source in self.sources.items() if source == DEFAULT]

    def _show_all(self) -> None:
        for name in self.fields:
            self._show(name)

    def _show(self, name: str) -> None:
        widget, source = self.fields[name], self.sources[name]
        is_default = source == DEFAULT
        widget.label = (
            (MARK + self._labels[name] + " (default)") if is_default else self._labels[name]
        )
        tip = self._tips[name]
        widget.tooltip = f"{tip}\nFrom: {source}" if tip else f"From: {source}"
