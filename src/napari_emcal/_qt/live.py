"""A dock's live source: frames from a Merlin or DECTRIS detector (or its simulator) as
they arrive, through LiberTEM-live.

Each acquisition fills a 4D layer ``live · <detector> <host>`` as its frames arrive; that
layer becomes the dock's dataset, so what the dock computes from a file it computes from
what has arrived (the overfocus images and calibration, the dataset check), and the last
scan stays after the detector stops. The acquisition runs as the dock's long task (in a
worker, with progress and Cancel); nothing here blocks the viewer.

The dock (``host``) has ``viewer``, ``task``, ``status``, ``error(message)``,
``use_live_layer(add)`` (``add()`` adds the layer; the dock makes it its dataset, keeping
what the user typed, and returns it) and
``data_arrived()`` (more frames are in the layer).
"""

from __future__ import annotations

import numpy as np
from magicgui import widgets
from napari.utils.notifications import show_info

from ..engine.live import DETECTORS, KEEP_BYTES, LiveSource
from ..errors import Cancelled, EmcalError, InvalidParameterError
from .common import message_label, save_path, scan_shape_from_text

__all__ = ["LivePanel", "is_live"]

LIVE_PREFIX = "live · "


def is_live(layer) -> bool:
    """A layer a live acquisition fills (its frames change while it arrives)."""
    return bool(layer is not None and layer.metadata.get("emcal", {}).get("live"))


class LivePanel(widgets.Container):
    """*Live from a detector*: detector, host, ports, scan shape, number of acquisitions,
    *Connect and acquire* and *Save acquisition…*. Works on its dock (``host``)."""

    def __init__(self, host):
        super().__init__(labels=True)
        self.margins = (0, 0, 0, 0)
        self.host = host
        self._arrived: np.ndarray | None = None  # handed over by the worker, shown at a poll
        self._layer = None
        self._source: LiveSource | None = None  # of the running or last acquisition
        self.received = 0  # acquisitions completed in the last run
        self.enabled_box = widgets.CheckBox(
            text="Live from a detector…",
            value=False,
            tooltip="process frames as a Merlin or DECTRIS detector (or its simulator) "
            "delivers them",
        )
        self.detector = widgets.ComboBox(
            label="Detector",
            choices=list(DETECTORS),
            value="merlin",
            tooltip="the detector's kind (LiberTEM-live connects to it)",
        )
        self.address = widgets.LineEdit(
            label="Host", value="127.0.0.1", tooltip="host name or IP address of the detector PC"
        )
        self.data_port = widgets.SpinBox(
            label="Data port",
            value=0,
            min=0,
            max=65535,
            tooltip="TCP port of the frame stream; 0 = the detector's default (Merlin 6342; "
            "a DECTRIS system's must be given)",
        )
        self.control_port = widgets.SpinBox(
            label="Control port",
            value=0,
            min=0,
            max=65535,
            tooltip="TCP port of the detector's control interface; 0 = the default (Merlin "
            "6341; a DECTRIS system's must be given)",
        )
        self.scan_shape = widgets.LineEdit(
            label="Live scan shape",
            value="",
            tooltip="ny, nx positions of each acquisition; empty = from the acquisition's header",
        )
        self.count = widgets.SpinBox(
            label="Acquisitions",
            value=1,
            min=1,
            max=1_000_000,
            tooltip="acquisitions to process, one after the other; the last stays on screen "
            "while the next fills in",
        )
        self.timeout = widgets.FloatSpinBox(
            label="Wait (s)",
            value=30.0,
            min=0.5,
            max=86400.0,
            step=5.0,
            tooltip="seconds to wait for an acquisition to start before giving up",
        )
        self.connect_button = widgets.PushButton(
            text="Connect and acquire",
            tooltip="connect, then process each acquisition as it arrives (Esc or Cancel "
            f"stops; the frames received are kept, up to {KEEP_BYTES / 2**30:g} GiB a scan)",
        )
        self.save_button = widgets.PushButton(
            text="Save acquisition…",
            tooltip="write the last acquisition's frames to a .npy file (this plugin and "
            "LiberTEM read it back)",
            enabled=False,
        )
        self.message = message_label("Live", "not connected")
        self.fields = [
            self.detector,
            self.address,
            self.data_port,
            self.control_port,
            self.scan_shape,
            self.count,
            self.timeout,
            self.connect_button,
            self.save_button,
            self.message,
        ]
        self.extend([self.enabled_box, *self.fields])
        self._show_fields()
        self.enabled_box.changed.connect(self._show_fields)
        self.connect_button.changed.connect(lambda: self.start())
        self.save_button.changed.connect(self._save_dialog)

    def _show_fields(self, *_):
        for field in self.fields:
            field.visible = self.enabled_box.value

    def source(self) -> LiveSource:
        """Where the detector is, from the fields (:class:`InvalidParameterError`)."""
        text = self.scan_shape.value.strip()
        scan = scan_shape_from_text(text) if text else None
        return LiveSource(
            self.detector.value,
            self.address.value.strip() or "127.0.0.1",
            self.data_port.value or None,
            self.control_port.value or None,
            scan,
        )

    def start(self) -> bool:
        """Connect and process ``count`` acquisitions in the dock's worker."""
        from ..engine.live import acquisitions

        host = self.host
        try:
            source = self.source()
        except EmcalError as exc:
            host.error(str(exc))
            return False
        count, timeout = self.count.value, self.timeout.value
        self._arrived, self.received, self._source = None, 0, source

        def work(report):
            done = 0

            def arrived(frames, received):
                # the first scan fills in on screen; after it, the last complete scan
                # stays on screen while the next one is recorded
                if done == 0:
                    self._arrived = (frames, received)
                report(done / count)  # raises Cancelled once Cancel is pressed

            for acquired in acquisitions(
                source, [], count=count, timeout=timeout, keep_frames=True, arrived=arrived
            ):
                if acquired.frames is None:
                    raise InvalidParameterError(
                        f"the acquisition is larger than the {KEEP_BYTES / 2**30:g} GiB kept in "
                        "memory: use a smaller scan, or emcal live for images without frames"
                    )
                done += 1
                frames = acquired.frames
                self._arrived, self.received = (frames, frames.shape[0] * frames.shape[1]), done
                report(done / count)
            return done

        started = host.task.start(
            f"live from {source.describe()}", work, self._finished, on_error=self._stopped
        )
        if started:
            self.message.value = f"waiting for an acquisition from {source.describe()}…"
        else:
            host.status.value = "another task is running: cancel it first"
        return started

    def poll(self) -> None:
        """Show frames the worker handed over (GUI thread)."""
        arrived, self._arrived = self._arrived, None
        if arrived is not None:
            self._show(*arrived)

    def _show(self, frames: np.ndarray, received: int) -> None:
        host, source = self.host, self._source
        name = f"{LIVE_PREFIX}{source.detector} {source.host}"
        layer = self._layer
        if layer is None or layer not in host.viewer.layers or layer.data.shape != frames.shape:
            if layer is not None and layer in host.viewer.layers:
                host.viewer.layers.remove(layer)
                show_info(
                    f"the acquisition's frames ({frames.shape}) differ from the last "
                    f"({layer.data.shape}): a new live layer"
                )
            metadata = {"emcal": {"source": source.describe(), "live": True}}
            self._layer = host.use_live_layer(
                lambda: host.viewer.add_image(
                    frames,
                    name=name,
                    visible=False,  # the dock's images are what the user watches
                    metadata=metadata,
                )
            )
        else:
            layer.data = frames
        self.save_button.enabled = True
        self.message.value = (
            f"acquisition {self.received + 1}: {received} of {frames.shape[0] * frames.shape[1]} "
            f"frames of {frames.shape[2]} x {frames.shape[3]} px"
        )
        host.data_arrived(received)

    def _finished(self, received: int) -> None:
        self.poll()
        self.message.value = (
            f"{received} acquisition(s) received; Estimate or Optimise work on the last, "
            "Save acquisition keeps it"
        )

    def _stopped(self, exc) -> None:
        self.poll()  # the frames received are kept
        why = "cancelled" if isinstance(exc, Cancelled) else f"stopped: {exc}"
        self.message.value = (
            f"{why}, after {self.received} complete acquisition(s); the frames received are kept"
        )

    @property
    def layer(self):
        """The live 4D layer, or None."""
        return self._layer if self._layer in self.host.viewer.layers else None

    def save(self, path) -> None:
        """Write the live layer's frames to ``path`` (.npy)."""
        layer = self.layer
        if layer is None:
            raise InvalidParameterError("no acquisition received yet")
        from .._files import atomic_write

        frames = np.asarray(layer.data)
        atomic_write(path, lambda temporary: np.save(temporary, frames))
        self.host.status.value = f"acquisition saved to {path}"

    def _save_dialog(self, event=None):
        path = save_path(None, "Save the acquisition", "acquisition.npy", "NumPy (*.npy)")
        if path:
            try:
                self.save(path)
            except (EmcalError, OSError) as exc:
                self.host.error(str(exc))
