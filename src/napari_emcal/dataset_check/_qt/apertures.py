"""Virtual apertures drawn as ellipses, polygons or rectangles on a Shapes layer over the
aperture sum; their images are recomputed in one pass after each edit (newest wins)."""

from __future__ import annotations

import numpy as np

from ..._qt.executor import pass_source
from ..._qt.layers import focus_space
from ..._qt.tasks import debounced
from ...engine import check_executor
from ...errors import EmcalError
from ..analysis import analyse
from ..masks import mask_from_shape

__all__ = ["DrawnApertures"]

APERTURE_SUM = " · aperture_sum"
APERTURES = " · apertures"
EDIT_PAUSE_MS = 300


class DrawnApertures:
    """The ``<layer> · apertures`` Shapes layer of a dock (``host``): its masks, and the
    images they give, shown through ``show_images(images)``."""

    def __init__(self, host, show_images):
        self.host = host
        self._show_images = show_images
        self._again = False
        self._pause = debounced(host.native, EDIT_PAUSE_MS, self.update)

    def masks(self) -> dict[str, np.ndarray]:
        """One mask per ellipse, polygon or rectangle on the apertures layer."""
        host = self.host
        shapes = host.find_output(APERTURES)
        if shapes is None:
            return {}
        detector = host.layer.value.data.shape[2:]
        reference = host.find_output(APERTURE_SUM) or shapes
        masks = {}
        for index, (vertices, kind) in enumerate(zip(shapes.data, shapes.shape_type), start=1):
            world = np.asarray(vertices)[:, -2:] * shapes.scale[-2:] + shapes.translate[-2:]
            pixels = (world - reference.translate[-2:]) / reference.scale[-2:]
            try:
                masks[f"shape {index}"] = mask_from_shape(detector, kind, pixels)
            except EmcalError as exc:
                host.status.value = f"shape {index}: {exc}"
        return masks

    def start(self) -> None:
        """A Shapes layer over the aperture sum, in ellipse mode."""
        host = self.host
        if host.layer.value is None:
            host.error("Choose a 4D dataset layer first.")
            return
        shapes = host.find_output(APERTURES)
        if shapes is None:
            reference = host.find_output(APERTURE_SUM)
            place = (
                {
                    "scale": reference.scale[-2:],
                    "translate": reference.translate[-2:],
                    "units": reference.units[-2:],  # the detector's: no units warning
                }
                if reference is not None
                else {}
            )
            shapes = host.viewer.add_shapes(
                ndim=2,
                name=f"{host.layer.value.name}{APERTURES}",
                edge_color="#00ff7f",
                face_color="transparent",
                edge_width=1,
                **place,
            )
        # drawn on the aperture sum: detector space in the main canvas while drawing
        focus_space(host.viewer, host.layer.value, "detector")
        shapes.visible = True
        shapes.events.data.connect(self._edited)  # ignored when already connected
        host.viewer.layers.selection.active = shapes
        shapes.mode = "add_ellipse"
        host.status.value = "draw ellipses or polygons on the aperture sum; each is an aperture"

    def _edited(self, event=None):
        self._pause.start()  # restarts: only the last of quick edits runs

    def update(self) -> bool:
        """Recompute the drawn apertures' images (one pass; the newest edit wins)."""
        host = self.host
        layer = host.layer.value
        if layer is None:
            return False
        if host.task.running:
            self._again = True
            return False
        masks = self.masks()
        if not masks:
            return False
        executor = check_executor(host.executor.value)
        source = pass_source(layer, executor)
        # drawn on the sum of the frames the last check's apertures saw: when those
        # followed the beam, these do too
        last = host.result
        follow = last.descan.matrix if last is not None and last.images_follow_beam else None

        def work(report):
            return analyse(
                source, masks=masks, progress=report, executor=executor, descan=follow
            ).images

        def finished():
            if self._again:
                self._again = False
                self.update()

        shown = host.while_present(self._show_images)
        return host.task.start("aperture images", work, shown, finished)
