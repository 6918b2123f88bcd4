"""Detector space in a second, small canvas docked under the viewer.

napari keeps one unit per world axis, so scan space (nm at the specimen) and detector
space (angles, or µm at the detector) cannot share its canvas in true units: the main
canvas shows scan space, and this dock shows the detector side of the same dataset, as
HyperSpy's and pyxem's navigator/signal pair does: the frame recorded at the scan position
under the cursor (or at the scan sliders), and the detector-space images (``aperture_sum``)
beside it, with axes in mrad when the file records the camera length and detector pixel
size (small-angle: one pixel subtends ``detector_pixel_size / camera_length``), else in µm
of the detector, else in pixels; the title says which and where the values came from.
"""

from __future__ import annotations

import weakref

import numpy as np
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QLabel, QVBoxLayout, QWidget

from .plots import ThemedPlot

__all__ = ["DetectorView", "detector_axes", "refresh_detector_view", "show_detector_view"]

DOCK_NAME = "Detector space"
#: Pause before redrawing after the images changed (ms): live updates come in bursts.
REDRAW_PAUSE_MS = 250

#: One view per viewer (weakly held: a closed viewer takes its view along).
_VIEWS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def detector_axes(metadata: dict) -> tuple[float, str, str]:
    """(size of one detector pixel, its unit, where it came from) from a 4D layer's
    ``metadata["emcal"]``: mrad from the camera length and detector pixel size, else µm of
    the detector, else 1 pixel."""
    from ..io.instrument import InstrumentMetadata
    from ..units import from_si

    inst = InstrumentMetadata.from_json(metadata.get("instrument") or {})
    pixel = inst.value("detector_pixel_size", metadata.get("detector_pixel_size"))
    length = inst.value("camera_length", metadata.get("camera_length"))
    pixel = float(np.ravel(pixel)[-1]) if pixel is not None else None
    if pixel and length and float(length) > 0:
        where = " and ".join(
            s for s in (inst.source("detector_pixel_size"), inst.source("camera_length")) if s
        )
        return from_si(pixel / float(length), "mrad"), "mrad", where or "the dataset's metadata"
    if pixel:
        return from_si(pixel, "µm"), "µm", inst.source("detector_pixel_size") or "metadata"
    return 1.0, "px", "no detector pixel size or camera length recorded"


class DetectorView(QWidget):
    """The frame under the cursor and the detector-space images of a 4D layer."""

    def __init__(self, viewer):
        super().__init__()
        self.viewer = viewer
        self.plot = ThemedPlot(viewer, figsize=(6.0, 2.0), min_height=170)
        self.plot.redraw = self.redraw
        self.caption = QLabel("")
        self.caption.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 0, 4, 0)
        layout.addWidget(self.caption)
        layout.addWidget(self.plot.canvas)
        self._source = None
        self._images: dict[str, str] = {}
        self.scan_index: tuple[int, int] | None = None
        self.on_pick = None  # called with a detector pixel (y, x) clicked in a panel
        self.plot.canvas.mpl_connect("button_press_event", self._clicked)
        viewer.cursor.events.position.connect(self._cursor_moved)
        viewer.dims.events.current_step.connect(self._sliders_moved)
        # refreshes in a burst (every image of every live update) draw once: a
        # matplotlib figure takes tens of ms to draw, on the GUI thread
        self._redraw_timer = QTimer(self)
        self._redraw_timer.setSingleShot(True)
        self._redraw_timer.setInterval(REDRAW_PAUSE_MS)
        self._redraw_timer.timeout.connect(self.redraw)

    def request_redraw(self) -> None:
        """Redraw after a short pause (once for a burst of requests)."""
        if not self._redraw_timer.isActive():
            self._redraw_timer.start()

    # -- what it shows ------------------------------------------------------------------
    @property
    def source(self):
        return self._source() if self._source is not None else None

    def show_dataset(self, source, images: dict | None = None, on_pick=None) -> None:
        """Show ``source``'s frames and its detector-space image layers (name -> layer);
        ``on_pick(detector_yx)`` for a click on a panel (a detector pixel)."""
        self._source = weakref.ref(source)
        self.on_pick = on_pick
        if self.scan_index is not None and not _inside(self.scan_index, source.data.shape[:2]):
            self.scan_index = None  # another dataset, or the scan was rearranged
        # by layer name: an output layer may be replaced while it keeps its name
        self._images = {k: v.name for k, v in (images or {}).items() if v is not None}
        if self.scan_index is None:
            self.scan_index = tuple(int(n) // 2 for n in source.data.shape[:2])
        self.redraw()

    def frame(self) -> np.ndarray | None:
        """The frame at :attr:`scan_index` (the scan centre when it lies outside the scan,
        as after the scan was rearranged)."""
        source = self.source
        if source is None:
            return None
        if self.scan_index is None or not _inside(self.scan_index, source.data.shape[:2]):
            self.scan_index = tuple(int(n) // 2 for n in source.data.shape[:2])
        return np.asarray(source.data[self.scan_index])

    def pick(self, detector_yx) -> None:
        """A detector pixel chosen in this view (what a click on a panel does)."""
        source = self.source
        if self.on_pick is None or source is None:
            return
        index = tuple(int(round(v)) for v in detector_yx)
        if all(0 <= i < n for i, n in zip(index, source.data.shape[2:])):
            self.on_pick(index)

    def _clicked(self, event) -> None:
        if event.inaxes is None or event.xdata is None or self.source is None:
            return
        size = detector_axes(self.source.metadata.get("emcal", {}))[0]
        self.pick((event.ydata / size, event.xdata / size))

    # -- following the main canvas --------------------------------------------------------
    def _cursor_moved(self, event=None) -> None:
        source = self.source
        if source is None or source not in self.viewer.layers:
            return
        position = np.asarray(self.viewer.cursor.position, float)[-2:]
        index = _scan_index(self.viewer, source, position)
        if index is not None and index != self.scan_index:
            self.scan_index = index
            self._show_frame()

    def _show_frame(self) -> None:
        """Only the frame changed: new pixels in the drawn image (cheap on every mouse
        move), or a full redraw when nothing is drawn yet."""
        axes = self.plot.figure.axes
        frame = self.frame()
        if not axes or not axes[0].images or frame is None:
            self.redraw()
            return
        image = axes[0].images[0]
        finite = frame[np.isfinite(frame)]
        low, high = np.percentile(finite, [1, 99.5]) if finite.size else (0.0, 1.0)
        image.set_data(frame)
        image.set_clim(low, max(high, low + 1e-9))
        axes[0].set_title(f"frame at scan {self.scan_index}", fontsize="small")
        self.plot.canvas.draw_idle()

    def _sliders_moved(self, event=None) -> None:
        source = self.source
        if source is None or source not in self.viewer.layers:
            return
        step = self.viewer.dims.current_step
        if len(step) < 4:
            return
        index = tuple(int(v) for v in source.world_to_data(self.viewer.dims.point)[:2])
        if all(0 <= i < n for i, n in zip(index, source.data.shape[:2])):
            if index != self.scan_index:
                self.scan_index = index
                self._show_frame()

    # -- drawing --------------------------------------------------------------------------
    def redraw(self) -> None:
        figure = self.plot.figure
        figure.clear()
        source = self.source
        if source is None:
            self.caption.setText("no 4D dataset")
            self.plot.canvas.draw_idle()
            return
        size, unit, where = detector_axes(source.metadata.get("emcal", {}))
        pick = " Click a detector pixel here to choose it." if self.on_pick else ""
        self.caption.setText(
            f"Detector space of '{source.name}', in {unit} ({where}). The main canvas shows "
            f"scan space in nm; hover over it to see the frame recorded there.{pick}"
        )
        panels = [(f"frame at scan {self.scan_index}", self.frame())]
        for name, layer_name in self._images.items():
            if layer_name in self.viewer.layers:
                panels.append((name, np.asarray(self.viewer.layers[layer_name].data)))
        axes = figure.subplots(1, len(panels), squeeze=False)[0]
        for ax, (title, image) in zip(axes, panels):
            if image is None:
                continue
            ny, nx = image.shape[-2:]
            binning = source.data.shape[-1] / nx
            extent = (-0.5 * binning * size, (nx - 0.5) * binning * size)
            extent = (*extent, (ny - 0.5) * binning * size, -0.5 * binning * size)
            finite = image[np.isfinite(image)]
            low, high = np.percentile(finite, [1, 99.5]) if finite.size else (0.0, 1.0)
            ax.imshow(image, cmap="gray", extent=extent, vmin=low, vmax=max(high, low + 1e-9))
            ax.set_title(title, fontsize="small")
            ax.set_xlabel(unit, fontsize="small")
            ax.tick_params(labelsize="x-small")
        self.plot.style()
        self.plot.canvas.draw_idle()


def _inside(index, shape) -> bool:
    return len(index) == 2 and all(0 <= i < n for i, n in zip(index, shape))


def _scan_index(viewer, source, world_yx) -> tuple[int, int] | None:
    """The scan position (row, column) under a world position of the main canvas, whose
    last two axes are scan space in the world's unit."""
    try:
        world_unit = viewer.layers.extent.units[-1]
        scan_unit = source.units[1]
        factor = (1.0 * world_unit).to(scan_unit).magnitude
    except Exception:  # no common unit: world coordinates are the scan's own numbers
        factor = 1.0
    index = np.floor(np.asarray(world_yx) * factor / np.asarray(source.scale[:2]) + 0.5)
    if not np.all(np.isfinite(index)):
        return None
    index = tuple(int(v) for v in index)
    inside = all(0 <= i < n for i, n in zip(index, source.data.shape[:2]))
    return index if inside else None


def _keep_side_docks_full_height(main) -> None:
    """The bottom dock under the canvas only: the side docks (layer list, tool docks) keep
    the window's full height at 1366x768. ``main``: the dock's top-level window."""
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QMainWindow

    if not isinstance(main, QMainWindow):
        return
    main.setCorner(Qt.Corner.BottomLeftCorner, Qt.DockWidgetArea.LeftDockWidgetArea)
    main.setCorner(Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)


def refresh_detector_view(viewer) -> None:
    """Redraw the viewer's detector-space dock, if it has one (its images changed)."""
    view = _VIEWS.get(viewer)
    if view is not None:
        view.request_redraw()


def show_detector_view(
    viewer, source, images: dict | None = None, on_pick=None
) -> DetectorView | None:
    """The viewer's detector-space dock (added under the canvas the first time), showing
    ``source``; None when the viewer has no window (headless)."""
    view = _VIEWS.get(viewer)
    if view is None:
        window = getattr(viewer, "window", None)
        if window is None or not hasattr(window, "add_dock_widget"):
            return None
        view = DetectorView(viewer)
        window.add_dock_widget(view, name=DOCK_NAME, area="bottom")
        _keep_side_docks_full_height(view.window())
        _VIEWS[viewer] = view
    view.show_dataset(source, images, on_pick)
    return view
