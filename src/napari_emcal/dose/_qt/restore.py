"""The offer to continue a dose table that a window left unsaved (it crashed or was
killed; a window closed normally keeps its table in ``closed/``, not offered)."""

from __future__ import annotations

import shutil
from pathlib import Path

from magicgui import widgets
from napari.utils.notifications import show_warning

from ..._qt.common import message_label
from ...errors import EmcalError
from ..autosave import Autosave

__all__ = ["RestoreOffer"]


class RestoreOffer(widgets.Container):
    """Shown only while there are unsaved tables: which one, *Restore the chosen table*,
    *Start a new table*. Works on its dock (``host``): its autosave, table and status."""

    def __init__(self, host):
        super().__init__(labels=True)
        self.margins = (0, 0, 0, 0)
        self.host = host
        self.pending = False
        self._unsaved: list[Autosave] = []
        self.message = message_label()
        self.choice = widgets.ComboBox(
            label="Unsaved table",
            choices=[],
            tooltip="dose tables of windows that crashed or were killed, newest first",
        )
        self.restore_button = widgets.PushButton(
            text="Restore the chosen table",
            tooltip="continue the chosen unsaved table in this window",
        )
        self.fresh_button = widgets.PushButton(
            text="Start a new table (set the old ones aside)",
            tooltip="the unsaved tables move to the set_aside folder beside the autosave",
        )
        self.extend([self.message, self.choice, self.restore_button, self.fresh_button])
        self.visible = False
        self.restore_button.changed.connect(lambda: self.restore())
        self.fresh_button.changed.connect(lambda: self.start_fresh())

    def offer(self) -> None:
        """Offer every unsaved session (windows that crashed) that holds something."""
        choices = []
        for session in self.host.sessions.unsaved(exclude=self.host.autosave):
            try:
                saved, notes = session.load_readable()
            except EmcalError as exc:
                choices.append((f"{session.path.name}: cannot be read ({exc})", session))
                continue
            if len(saved) == 0 and len(saved.calibration) == 0:
                continue
            damaged = f" · damaged: {'; '.join(notes)}" if notes else ""
            # the file's name keeps two sessions of the same minute and size apart (a
            # choice box keeps one entry per label)
            label = (
                f"{session.modified:%Y-%m-%d %H:%M} · {len(saved)} image(s), "
                f"{len(saved.calibration)} current(s){damaged} · {session.path.name}"
            )
            choices.append((label, session))
        if not choices:
            return
        self._unsaved = [session for _, session in choices]
        # the choices carry indices into _unsaved
        self.choice.choices = [(label, index) for index, (label, _) in enumerate(choices)]
        self.choice.value = 0
        self.message.value = (
            f"{len(choices)} unsaved dose table(s) from windows that crashed or were killed: "
            "restore one, or set them aside."
        )
        self.visible = self.pending = True

    def _close(self) -> None:
        self.visible = self.pending = False

    def restore(self, session: Autosave | None = None) -> None:
        """Continue an unsaved table (the chosen one): this window takes over its file.

        A damaged file gives what can be read, with a message naming what was dropped; the
        file itself is kept aside first (``.previous``), so nothing is lost."""
        host = self.host
        if session is None and self.choice.value is not None:
            session = self._unsaved[self.choice.value]
        if session is None:
            return
        try:
            restored, notes = session.load_readable()
        except EmcalError as exc:
            host.error(str(exc))
            return
        if not session.lock():
            host.error(f"{session.path.name} was just taken by another window")
            return
        if notes:
            shutil.copy2(session.path, session.backup_path)
        host.continue_in(session)
        self._unsaved = [other for other in self._unsaved if other.path != session.path]
        self._close()
        host.set_table(restored)
        message = f"restored {len(restored)} image(s) from {session.path.name}"
        if notes:
            message += f"; dropped: {'; '.join(notes)} (the file as it was: {session.backup_path})"
            show_warning(message)
        host.status.value = message

    def start_fresh(self) -> None:
        """Begin a new table; the unsaved ones move to the set_aside folder."""
        kept = [str(self.host.sessions.set_aside(session)) for session in self._unsaved]
        self._unsaved = []
        self._close()
        if kept:
            self.host.status.value = f"the unsaved table(s) are kept in {Path(kept[0]).parent}"
        self.host.refresh()
