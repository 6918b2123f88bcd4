"""The "4D dataset check" dock widget: beam centre, virtual apertures, CoM, descan, report.

Glue only: widget values -> :func:`~napari_emcal.dataset_check.analysis.analyse` and
:func:`~napari_emcal.dataset_check.report.dataset_report` in a worker (progress, cancel) ->
layers named ``<layer> · aperture <name>``, ``· CoM y``, ``· CoM x``, ``· descan shift``
and a report. Apertures drawn as ellipses or polygons on ``<layer> · apertures`` (over the
``· aperture_sum`` image) are recomputed when edited; the newest edit wins.
"""

from __future__ import annotations

import numpy as np
from magicgui import widgets
from napari.utils.notifications import show_error, show_warning

from ..._qt.common import ScrollableDock, is_4d_image, message_label
from ..._qt.executor import executor_field, pass_source
from ..._qt.layers import (
    output_layer,
    recorded_calibration,
    robust_limits,
    show_result,
    upsert_layer,
    while_present,
)
from ..._qt.tasks import LongTask, debounced, task_controls
from ...engine import check_executor
from ...errors import EmcalError
from ..analysis import BeamDisk, analyse, estimate_beam, find_beam
from ..com_rotation import compare_rotations
from ..masks import beam_masks, mask_from_shape
from ..report import dataset_report, saturation_with_source

__all__ = ["DatasetCheckWidget"]

APERTURE_SUM = " · aperture_sum"
APERTURES = " · apertures"


def _diverging(image) -> dict:
    """A diverging colormap with limits symmetric about zero (robust to outliers)."""
    values = np.asarray(image)
    finite = values[np.isfinite(values)]
    bound = float(np.percentile(np.abs(finite), 99.5)) if finite.size else 1.0
    bound = bound if bound > 0 else 1.0
    return {"colormap": "bwr", "contrast_limits": (-bound, bound)}


class DatasetCheckWidget(ScrollableDock, widgets.Container):
    """Virtual apertures and checks of a 4D STEM dataset."""

    def __init__(self, napari_viewer):
        super().__init__(labels=True, scrollable=True)  # fits a laptop screen
        self.viewer = napari_viewer
        self.result = None  # the last full pass (PassResult)
        self.report = None
        self._pending_apertures = False

        self.layer = widgets.ComboBox(
            label="4D dataset",
            tooltip="the 4D STEM layer (scan y, scan x, detector y, detector x) to check",
            choices=self._layer_choices,
        )
        self.find_button = widgets.PushButton(
            text="Find beam centre",
            tooltip="the bright-field disk from the aperture sum or 64 frames "
            "(Run check also finds it)",
        )
        self.cy = widgets.FloatSpinBox(
            label="Beam centre y (px)",
            tooltip="disk centre, detector pixels along y",
            value=0.0,
            min=-1e5,
            max=1e5,
            step=0.1,
        )
        self.cx = widgets.FloatSpinBox(
            label="Beam centre x (px)",
            tooltip="disk centre, detector pixels along x",
            value=0.0,
            min=-1e5,
            max=1e5,
            step=0.1,
        )
        self.radius = widgets.FloatSpinBox(
            label="Disk radius (px)",
            value=0.0,
            min=0.0,
            max=1e5,
            step=0.1,
            tooltip="also the BF aperture",
        )
        self.send_button = widgets.PushButton(
            text="Use as beam centre in Overfocus calibration",
            tooltip="send cy, cx to the Overfocus calibration widget",
        )
        self.adf_inner = widgets.FloatSpinBox(
            label="ADF inner (disk radii)",
            tooltip="inner radius of the ADF annulus, in bright-field disk radii",
            value=1.2,
            min=0.0,
            max=100.0,
            step=0.1,
        )
        self.adf_outer = widgets.FloatSpinBox(
            label="ADF outer (disk radii)",
            value=0.0,
            min=0.0,
            max=1000.0,
            step=0.5,
            tooltip="0 = to the detector corners",
        )
        self.scan_rotation = widgets.FloatSpinBox(
            label="Scan rotation (°)",
            tooltip="scan rotation used to turn the CoM field (degrees); from an accepted "
            "overfocus calibration when there is one",
            value=0.0,
            min=-360.0,
            max=360.0,
            step=0.1,
        )
        self.scan_rotation.native.setDecimals(4)  # a calibration's 0.001° is kept
        self.flip_y = widgets.CheckBox(
            text="Flip y",
            tooltip="flip of the detector y axis (handedness), as LiberTEM's flip_y",
            value=False,
        )
        self.max_count = widgets.FloatSpinBox(
            label="Saturation count",
            value=0.0,
            min=0.0,
            max=1e12,
            step=1.0,
            tooltip="0 = from the file, else the dtype maximum",
        )
        self.tolerance = widgets.FloatSpinBox(
            label="Descan tolerance (px)",
            tooltip="largest acceptable movement of the disk across the scan, detector pixels",
            value=2.0,
            min=0.0,
            max=1e4,
            step=0.5,
        )
        self.draw_button = widgets.PushButton(
            text="Draw an aperture (ellipse or polygon)",
            tooltip="draw shapes on the aperture sum: each becomes a virtual aperture image",
        )
        self.status = message_label()
        self.executor = executor_field(self.status)
        self.run_button = widgets.PushButton(
            text="Run check (one pass)",
            tooltip="aperture images, CoM, beam centre, descan and saturation in one pass "
            "(Esc cancels)",
        )
        self.progress, self.cancel_button = task_controls()
        self.report_label = message_label(label="Report", value="—")
        self.extend(
            [
                self.layer,
                self.find_button,
                self.cy,
                self.cx,
                self.radius,
                self.send_button,
                self.adf_inner,
                self.adf_outer,
                self.scan_rotation,
                self.flip_y,
                self.max_count,
                self.tolerance,
                self.draw_button,
                self.executor,
                self.run_button,
                self.progress,
                self.cancel_button,
                self.report_label,
                self.status,
            ]
        )
        self.task = LongTask(self.native, self.progress, self.cancel_button, self.status)
        self._debounce = debounced(self.native, 300, self.update_apertures)

        self.find_button.changed.connect(lambda: self.find_beam())
        self.send_button.changed.connect(lambda: self.send_beam_centre())
        self.draw_button.changed.connect(lambda: self.start_aperture())
        self.run_button.changed.connect(lambda: self.run())
        self.layer.changed.connect(self._use_recorded_calibration)
        self.layer.changed.connect(self._update_hint)
        self._update_hint()
        self.viewer.layers.events.inserted.connect(self._refresh_choices)
        self.viewer.layers.events.removed.connect(self._refresh_choices)

    # -- inputs -------------------------------------------------------------------------------
    def _layer_choices(self, _widget=None):
        return [(layer.name, layer) for layer in self.viewer.layers if is_4d_image(layer)]

    def _refresh_choices(self, event=None):
        self.layer.reset_choices()

    def set_layer(self, layer) -> None:
        self._refresh_choices()
        self.layer.value = layer
        self._use_recorded_calibration()

    def _update_hint(self, event=None) -> None:
        if self.layer.value is None:
            text = "open a 4D STEM dataset and choose it above"
        elif self.report is None:
            text = "Run check: it finds the beam itself and reports what the data are fit for"
        else:
            text = (
                "read the report; draw apertures on the aperture sum for more images, or "
                "send the beam centre to the overfocus calibration"
            )
        self.show_hint(text)

    def _use_recorded_calibration(self, event=None) -> None:
        """Take the scan rotation and flip of an overfocus calibration accepted on the layer."""
        recorded = recorded_calibration(self.layer.value)
        if recorded is not None:
            self.scan_rotation.value = recorded["scan_rotation"]
            self.flip_y.value = recorded["flip_y"]
            self.status.value = "scan rotation and flip from the accepted overfocus calibration"

    @property
    def beam(self) -> BeamDisk | None:
        return (
            BeamDisk(self.cy.value, self.cx.value, self.radius.value)
            if self.radius.value > 0
            else None
        )

    def _find(self, suffix: str):
        return output_layer(self.viewer, self.layer.value, suffix)

    def _upsert(self, suffix: str, data, **kwargs):
        return upsert_layer(self.viewer, self.layer.value, suffix, data, **kwargs)

    def _scan_kwargs(self, image):
        layer = self.layer.value
        return {"scale": layer.scale[:2], "contrast_limits": robust_limits(image)}

    # -- beam centre -----------------------------------------------------------------------------
    def find_beam(self) -> bool:
        """The disk from the aperture sum layer when there is one, else from 64 frames."""
        layer = self.layer.value
        if layer is None:
            self._error("Choose a 4D dataset layer first.")
            return False
        summed = self._find(APERTURE_SUM)
        source = np.asarray(summed.data) if summed is not None else None
        data = layer.data

        def work(report):
            beam = find_beam(source) if source is not None else estimate_beam(data)
            report(1.0)
            return beam

        return self.task.start("finding the beam centre", work, self._present(self._show_beam))

    def _show_beam(self, beam: BeamDisk) -> None:
        self.cy.value, self.cx.value, self.radius.value = beam.cy, beam.cx, beam.radius
        self.status.value = (
            f"beam centre ({beam.cy:.2f}, {beam.cx:.2f}) px, disk radius {beam.radius:.2f} px"
        )

    def send_beam_centre(self):
        """Put the beam centre into the Overfocus calibration widget (docked if needed)."""
        if self.beam is None:
            self._error("Find the beam centre first.")
            return None
        _, overfocus = self.viewer.window.add_plugin_dock_widget(
            "napari-emcal", "Overfocus calibration"
        )
        if self.layer.value is not None:
            overfocus.set_layer(self.layer.value)
        overfocus.cy.value, overfocus.cx.value = self.cy.value, self.cx.value
        self.status.value = "beam centre sent to Overfocus calibration"
        return overfocus

    # -- apertures --------------------------------------------------------------------------------
    def masks(self) -> dict[str, np.ndarray]:
        """BF and ADF from the disk (when known), and the drawn apertures."""
        shape = self.layer.value.data.shape[2:]
        masks = beam_masks(shape, self.beam, self.adf_inner.value, self.adf_outer.value)
        masks.update(self.drawn_masks())
        return masks

    def drawn_masks(self) -> dict[str, np.ndarray]:
        """One mask per ellipse, polygon or rectangle on the apertures layer."""
        shapes = self._find(APERTURES)
        if shapes is None:
            return {}
        detector = self.layer.value.data.shape[2:]
        reference = self._find(APERTURE_SUM) or shapes
        masks = {}
        for index, (vertices, kind) in enumerate(zip(shapes.data, shapes.shape_type), start=1):
            world = np.asarray(vertices)[:, -2:] * shapes.scale[-2:] + shapes.translate[-2:]
            pixels = (world - reference.translate[-2:]) / reference.scale[-2:]
            try:
                masks[f"shape {index}"] = mask_from_shape(detector, kind, pixels)
            except EmcalError as exc:
                self.status.value = f"shape {index}: {exc}"
        return masks

    def start_aperture(self) -> None:
        """A Shapes layer over the aperture sum, in ellipse mode."""
        if self.layer.value is None:
            self._error("Choose a 4D dataset layer first.")
            return
        shapes = self._find(APERTURES)
        if shapes is None:
            reference = self._find(APERTURE_SUM)
            kwargs = (
                {"scale": reference.scale[-2:], "translate": reference.translate[-2:]}
                if reference is not None
                else {}
            )
            shapes = self.viewer.add_shapes(
                ndim=2,
                name=f"{self.layer.value.name}{APERTURES}",
                edge_color="#00ff7f",
                face_color="transparent",
                edge_width=1,
                **kwargs,
            )
        shapes.events.data.connect(self._apertures_edited)  # ignored when already connected
        self.viewer.layers.selection.active = shapes
        shapes.mode = "add_ellipse"
        self.status.value = "draw ellipses or polygons on the aperture sum; each is an aperture"

    def _apertures_edited(self, event=None):
        self._debounce.start()  # restarts: only the last of quick edits runs

    def update_apertures(self) -> bool:
        """Recompute the drawn apertures' images (one pass; the newest edit wins)."""
        layer = self.layer.value
        if layer is None:
            return False
        if self.task.running:
            self._pending_apertures = True
            return False
        masks = self.drawn_masks()
        if not masks:
            return False
        executor = check_executor(self.executor.value)
        source = pass_source(layer, executor)

        def work(report):
            return analyse(source, masks=masks, progress=report, executor=executor).images

        def finished():
            if self._pending_apertures:
                self._pending_apertures = False
                self.update_apertures()

        return self.task.start("aperture images", work, self._present(self._show_images), finished)

    def _show_images(self, images: dict[str, np.ndarray]) -> None:
        for name, image in images.items():
            self._upsert(f" · aperture {name}", image, **self._scan_kwargs(image))
        self.status.value = f"aperture images: {', '.join(images)}"

    # -- the check ---------------------------------------------------------------------------
    def run(self) -> bool:
        """One pass: apertures, CoM, disk centres, saturation; then the report."""
        layer = self.layer.value
        if layer is None:
            self._error("Choose a 4D dataset layer first.")
            return False
        metadata = layer.metadata.get("emcal", {})
        masks = self.masks()
        beam = self.beam
        data = layer.data
        count, count_source = saturation_with_source(
            data.dtype, self.max_count.value or None, metadata
        )
        rotation, flip, tolerance = (
            self.scan_rotation.value,
            self.flip_y.value,
            self.tolerance.value,
        )
        pixel = metadata.get("detector_pixel_size")
        try:
            executor = check_executor(self.executor.value)
        except EmcalError as exc:
            self._error(str(exc))
            return False
        source = pass_source(layer, executor)

        inner, outer = self.adf_inner.value, self.adf_outer.value

        def work(report):
            found = None
            if beam is None:  # find it first, so that the pass gives BF and ADF images too
                try:
                    found = estimate_beam(data)
                except EmcalError:
                    found = None  # the report says there is no disk
                if found is not None:
                    masks.update(beam_masks(data.shape[2:], found, inner, outer))
            result = analyse(
                source,
                masks=masks,
                beam=beam,
                max_count=count,
                scan_rotation=rotation,
                flip_y=flip,
                progress=report,
                executor=executor,
            )
            checked = dataset_report(
                result,
                camera_length=metadata.get("camera_length"),
                detector_pixel_size=float(np.mean(pixel)) if pixel else None,
                descan_tolerance_px=tolerance,
            )
            checked.saturation_count, checked.saturation_source = count, count_source
            return result, checked

        started = self.task.start("checking the dataset", work, self._present(self._show_check))
        if not started:
            self.status.value = "another task is running: cancel it first"
        return started

    def _show_check(self, value) -> None:
        result, report = value
        self.result, self.report = result, report
        self._show_images(result.images)
        layer = self.layer.value
        first = self._find(APERTURE_SUM) is None
        # detector space beside scan space (the 4D layer's frames with it), not on top
        beside = np.array([0.0, layer.data.shape[1] * float(layer.scale[1]) * 1.05])
        self._upsert(
            APERTURE_SUM,
            result.aperture_sum,
            contrast_limits=robust_limits(result.aperture_sum),
            translate=beside,
        )
        if not np.any(layer.translate[2:]):
            layer.translate = (*layer.translate[:2], *beside)
        for axis, com in (("y", result.com_y), ("x", result.com_x)):
            # a signed field: diverging colours, white at zero
            self._upsert(f" · CoM {axis}", com, **{**self._scan_kwargs(com), **_diverging(com)})
        if report.descan is not None:
            magnitude = np.hypot(*report.descan.shift_map)
            self._upsert(
                " · descan shift", magnitude, colormap="viridis", **self._scan_kwargs(magnitude)
            )
        if self.beam is None and report.beam is not None:
            self._show_beam(report.beam)
        main = self._find(" · aperture BF") or self._find(" · CoM y")
        if first:
            self.viewer.reset_view()  # scan and detector images both in view
        show_result(self.viewer, main)
        summary = report.summary()
        recorded = recorded_calibration(self.layer.value)
        if recorded is not None and report.com_rotation is not None:
            comparison = compare_rotations(
                report.com_rotation, recorded["scan_rotation"], recorded["flip_y"]
            )
            summary += f"\nvs the overfocus calibration: {comparison}"
        self.report_label.value = summary
        self._update_hint()
        self.status.value = "check done"
        if report.descan_exceeds:
            show_warning(
                f"The bright-field disk moves {report.descan.shift_across_scan:.2f} px "
                f"across the scan (tolerance {report.descan_tolerance_px:g} px)."
            )

    def _present(self, on_result):
        """``on_result`` only while the dataset layer the task started on is still there."""

        def gone(message):
            self.status.value = message

        return while_present(self.viewer, [self.layer.value], on_result, gone)

    def _error(self, message: str) -> None:
        self.status.value = message
        show_error(message)
