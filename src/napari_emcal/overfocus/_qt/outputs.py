"""The overfocus dock's output layers: the five images of its dataset as ``<dataset> ·
<name>`` (detector space beside scan space, never stacked), and the frame and detector
pixel the user picks by clicking them (a click, never the start of a pan)."""

from __future__ import annotations

import numpy as np

from ..._qt.layers import (
    click_only,
    detector_space,
    focus_space,
    output_layer,
    robust_limits,
    scan_space,
    show_result,
    spaces_drawn_apart,
    upsert_layer,
)
from ..images import OUTPUTS

__all__ = ["SUFFIX", "OutputImages"]

#: Layer-name suffixes of the output images (docs/conventions.md).
SUFFIX = {name: f" · {name}" for name in OUTPUTS}


class OutputImages:
    """Output layers of a dock (``host``: its viewer, dataset layer, preview factors and
    ``schedule_update()``), and the picks: :attr:`select` (the scan position shown as
    ``selected``) and :attr:`point` (the detector pixel shown as ``point``)."""

    def __init__(self, host):
        self.host = host
        self.select: tuple[int, int] | None = None
        self.point: tuple[int, int] | None = None

    def _aperture_changed(self, image) -> bool:
        """Whether ``image`` differs from the ``aperture_sum`` last drawn (and keep it)."""
        previous, self._last_aperture = getattr(self, "_last_aperture", None), image
        return previous is None or not np.array_equal(previous, image)

    def forget_picks(self) -> None:
        self.select = self.point = None

    def layer(self, name: str):
        """The output layer ``<dataset> · name``, or None."""
        return output_layer(self.host.viewer, self.host.layer.value, SUFFIX[name])

    def update(self, images: dict, factors: tuple[int, int]) -> None:
        """Show ``images`` computed at (detector bin, scan every n-th) ``factors``."""
        for _ in self.updating(images, factors):
            pass

    def updating(self, images: dict, factors: tuple[int, int]):
        """:meth:`update` as a generator, a step per layer (see ``tasks.Steps``): adding
        or refreshing five layers at once would freeze the window."""
        host, layer = self.host, self.host.layer.value
        created = False
        for name, image in images.items():
            new = self.layer(name) is None
            detector = name == "aperture_sum"
            # the units of the space it lies in, kept for saving (napari draws one unit
            # per world axis, which the 4D layer's detector axes hold)
            units = [f"{u:~}" for u in (layer.units[2:] if detector else layer.units[:2])]
            place = detector_space(layer, factors[0]) if detector else scan_space(layer, factors[1])
            shown = upsert_layer(
                host.viewer,
                layer,
                SUFFIX[name],
                image,
                contrast_limits=robust_limits(image),
                metadata={"emcal": {"role": name, "source": layer.name, "units": units}},
                **place,
            )
            if new:
                created = True
                if name == "point":
                    shown.mouse_drag_callbacks.append(click_only(self._clicked_point_image))
                elif name == "aperture_sum":
                    shown.mouse_drag_callbacks.append(click_only(self._clicked_aperture))
            yield
            if host.layer.value is not layer or layer not in host.viewer.layers:
                return  # the dataset changed between two steps: its images are gone
        if created:
            self._frame_views(layer)
            self.show_result()
        elif "aperture_sum" in images and self._aperture_changed(images["aperture_sum"]):
            # aperture_sum does not depend on the twin: a calibration's many updates
            # leave it as it is, and redrawing the detector view's matplotlib figure for
            # each of them froze the window
            from ..._qt.detector_view import refresh_detector_view

            refresh_detector_view(host.viewer)

    def _frame_views(self, layer) -> None:
        """Scan and detector images both in view when drawn in comparable units; when the
        detector axes are in µm of the physical detector, the main canvas shows scan space
        in nm and the detector view dock shows the frames and ``aperture_sum``."""
        focus_space(self.host.viewer, layer, "scan")
        if spaces_drawn_apart(layer):
            from ..._qt.detector_view import show_detector_view

            show_detector_view(
                self.host.viewer,
                layer,
                {"aperture_sum": self.layer("aperture_sum")},
                on_pick=self.select_point,  # the detector pixel shown as `point`
            )

    def show_result(self) -> None:
        """The sharp ``shifted_sum`` on top, selected."""
        show_result(self.host.viewer, self.layer("shifted_sum"))

    def _clicked_point_image(self, layer, data_yx):
        every = self.host.preview.factors[1]
        self.select_frame(tuple(int(v) * every for v in np.round(data_yx)))

    def _clicked_aperture(self, layer, data_yx):
        bin_ = self.host.preview.factors[0]
        self.select_point(tuple(int(v) * bin_ for v in np.round(data_yx)))

    def select_frame(self, scan_yx) -> None:
        """Use the frame at scan position ``scan_yx`` for ``selected``."""
        if _inside(scan_yx, self.host.layer.value.data.shape[:2]):
            self.select = tuple(int(v) for v in scan_yx)
            self.host.schedule_update()

    def select_point(self, detector_yx) -> None:
        """Use detector pixel ``detector_yx`` for ``point``."""
        if _inside(detector_yx, self.host.layer.value.data.shape[2:]):
            self.point = tuple(int(v) for v in detector_yx)
            self.host.schedule_update()


def _inside(index, shape) -> bool:
    return all(0 <= i < n for i, n in zip(index, shape))
