"""The "4D dataset check" dock widget: beam centre, virtual apertures, CoM, descan, report.

Glue only: widget values -> :func:`~napari_emcal.dataset_check.follow.check_pass` (the
CoM, and beyond the descan tolerance the apertures, follow the beam) and
:func:`~napari_emcal.dataset_check.report.dataset_report` in a worker (progress, cancel) ->
layers named ``<layer> · aperture <name>``, ``· CoM y``, ``· CoM x``, ``· descan shift``
and a report. The beam section is :mod:`.beam`; apertures drawn on ``<layer> ·
apertures`` are :mod:`.apertures`; the descan's exchange and exports :mod:`.descan`.
"""

from __future__ import annotations

import numpy as np
from magicgui import widgets
from napari.utils.notifications import show_warning

from ..._qt.common import message_label, span
from ..._qt.dock import ToolDock
from ..._qt.executor import executor_field, pass_source
from ..._qt.layers import (
    detector_space,
    diverging,
    focus_space,
    recorded_calibration,
    robust_limits,
    scan_space,
    show_result,
    spaces_drawn_apart,
)
from ..._qt.live import LivePanel, is_live
from ..._qt.source4d import Source4D
from ..._qt.tasks import NewestWins
from ...engine import check_executor
from ...errors import EmcalError
from ..analysis import estimate_beam
from ..com_rotation import compare_rotations
from ..follow import check_pass
from ..masks import beam_masks
from ..report import dataset_report, saturation_with_source
from .apertures import APERTURE_SUM, DrawnApertures
from .beam import BeamControls
from .descan import DescanActions
from .settings import CheckSettings

__all__ = ["DatasetCheckWidget"]

#: Pause after frames arrive before a live check of them (a stream arrives in bursts).
LIVE_PAUSE_MS = 300


class DatasetCheckWidget(ToolDock):
    """Virtual apertures and checks of a 4D STEM dataset."""

    def __init__(self, napari_viewer):
        super().__init__(napari_viewer)
        self.result = None  # the last full pass (PassResult)
        self.report = None
        self.source = Source4D(
            self, "the 4D STEM layer (scan y, scan x, detector y, detector x) to check"
        )
        self.layer = self.source.layer
        self.live = LivePanel(self)
        self.live_updates = NewestWins(self.native, LIVE_PAUSE_MS, self._live_check)
        self.beam_controls = BeamControls(self)
        self.settings = CheckSettings()
        self.apertures = DrawnApertures(self, self._show_images)
        self.draw_button = widgets.PushButton(
            text="Draw an aperture (ellipse or polygon)",
            tooltip="draw shapes on the aperture sum: each becomes a virtual aperture image",
        )
        self.executor = executor_field(self.status)
        self.run_button = widgets.PushButton(
            text="Run check (one pass)",
            tooltip="aperture images, CoM, beam centre, descan and saturation in one pass "
            "(Esc cancels)",
        )
        self.task = self.long_task()
        self.report_label = message_label(value="Report: —")
        self.descan = DescanActions(self)
        self.extend(
            [
                self.source,
                self.live,
                self.beam_controls,
                self.settings,
                self.draw_button,
                self.executor,
                self.run_button,
                self.progress,
                self.cancel_button,
                self.report_label,
                self.descan,
                self.status,
            ]
        )
        span(self.report_label)  # the report reads best the dock's full width,
        self.report_label.native.setStyleSheet("font-family: monospace;")  # in columns
        self.draw_button.changed.connect(lambda: self.apertures.start())
        self.run_button.changed.connect(lambda: self.run())
        self._generation = 0  # which dataset a result belongs to
        for event in (
            self.layer.changed,
            self.source.reopened,
            self.source.reshaped,
            self.source.replaced,
        ):
            event.connect(self._retarget)
        self._retarget()

    # -- inputs -------------------------------------------------------------------------------
    def set_layer(self, layer) -> None:
        """Check ``layer``; chosen again, it gives the calibration accepted on it since."""
        same = layer is self.layer.value
        if self.source.set_layer(layer) and same:
            recorded = recorded_calibration(layer)
            if recorded is not None:
                self.receive_rotation(
                    recorded["scan_rotation"],
                    recorded["flip_y"],
                    "from the accepted overfocus calibration",
                )

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

    def _retarget(self, event=None) -> None:
        """Another dataset (layer, dataset of the file, scan shape or data): what was found
        on the previous one (beam disk, report, file values) is forgotten or read again,
        so that the check gives what a fresh dock gives. A check still running on the
        previous data is stopped and its result dropped."""
        self._generation += 1
        self.task.cancel()
        self.result = self.report = None
        self.report_label.value = "Report: —"
        self.beam_controls.forget()
        self.descan.received = None  # the twin's descan was of the previous data
        layer = self.layer.value
        metadata = layer.metadata.get("emcal", {}) if layer is not None else {}
        recorded = recorded_calibration(layer)
        self.settings.fill_from(metadata, recorded)
        if recorded is not None:
            self.status.value = "scan rotation and flip from the accepted overfocus calibration"
        self._update_hint()

    def receive_rotation(self, scan_rotation: float, flip_y: bool, source: str) -> None:
        """Take the scan rotation (°) and flip that another dock calibrated."""
        self.settings.scan_rotation.value, self.settings.flip_y.value = scan_rotation, flip_y
        self.status.value = f"scan rotation and flip {source}"

    def receive_descan(self, matrix, sigma, source: str) -> None:
        """Take the descan (2x2 px per scan px, standard errors or None) that another dock
        holds: the report compares the check's fit with it."""
        self.descan.receive(matrix, sigma, source)
        if self.report is not None:
            self._show_report()

    @property
    def beam(self):
        """The bright-field disk shown (:class:`BeamDisk`), or None."""
        return self.beam_controls.beam

    def find_beam(self) -> bool:
        """See :meth:`BeamControls.find`."""
        return self.beam_controls.find()

    def masks(self) -> dict[str, np.ndarray]:
        """BF and ADF from the disk (when known), and the drawn apertures."""
        shape = self.layer.value.data.shape[2:]
        masks = beam_masks(
            shape, self.beam, self.settings.adf_inner.value, self.settings.adf_outer.value
        )
        masks.update(self.apertures.masks())
        return masks

    def _scan_image(self, suffix: str, image, **properties) -> None:
        place = scan_space(self.layer.value)
        self.put_output(suffix, image, contrast_limits=robust_limits(image), **place, **properties)

    def _show_images(self, images: dict[str, np.ndarray]) -> None:
        for name, image in images.items():
            self._scan_image(f" · aperture {name}", image)
        self.status.value = f"aperture images: {', '.join(images)}"

    # -- the check ---------------------------------------------------------------------------
    def run(self) -> bool:
        """One pass: apertures, CoM, disk centres, saturation; then the report."""
        layer = self.layer.value
        if layer is None:
            self.error("Choose a 4D dataset layer first.")
            return False
        try:
            executor = check_executor(self.executor.value)
        except EmcalError as exc:
            self.error(str(exc))
            return False
        work = self._check_work(layer, layer.data, pass_source(layer, executor), executor)
        generation = self._generation

        def show(value):
            if generation == self._generation:  # else about data no longer in front
                return self._showing_check(value)  # in steps (tasks.Steps)
            return None

        started = self.task.start("checking the dataset", work, self.while_present(show))
        if not started:
            self.status.value = "another task is running: cancel it first"
        return started

    def _check_work(self, layer, data, source, executor):
        """``work(report)`` of one check over ``data`` of ``layer`` (read from ``source`` on
        ``executor``), with the dock's settings as they are now: one pass, two when the
        beam walks beyond the tolerance (:func:`~napari_emcal.dataset_check.follow.
        check_pass`)."""
        metadata = layer.metadata.get("emcal", {})
        drawn = self.apertures.masks()
        beam = self.beam
        count, count_source = saturation_with_source(
            data.dtype, self.settings.max_count.value or None, metadata
        )
        rotation, flip = self.settings.scan_rotation.value, self.settings.flip_y.value
        tolerance = self.settings.tolerance.value
        camera_length, pixel = self.settings.angle_inputs
        inner, outer = self.settings.adf_inner.value, self.settings.adf_outer.value

        def work(report):
            disk = beam
            if disk is None:  # found first: the pass gives BF and ADF images and the descan
                try:
                    disk = estimate_beam(data)
                except EmcalError:
                    disk = None  # the report says there is no disk
            result = check_pass(
                data,
                beam=disk,
                masks=drawn,
                adf=(inner, outer),
                max_count=count,
                scan_rotation=rotation,
                flip_y=flip,
                descan_tolerance_px=tolerance,
                progress=report,
                executor=executor,
                source=source,
            )
            checked = dataset_report(
                result,
                camera_length=camera_length,
                detector_pixel_size=pixel,
                descan_tolerance_px=tolerance,
            )
            checked.saturation_count, checked.saturation_source = count, count_source
            return result, checked

        return work

    # -- live ------------------------------------------------------------------------------
    def use_live_layer(self, add):
        """Check the layer ``add()`` adds, as its frames arrive."""
        layer = add()
        self.set_layer(layer)
        return layer

    def data_arrived(self, received: int) -> None:
        """``received`` frames of the live layer are in: check its complete scan rows."""
        layer = self.layer.value
        if layer is not None:
            self._live_rows = received // layer.data.shape[1]
            self.live_updates.request(invalidate=False)

    def _live_check(self):
        """The work of one check of the scan rows received so far (for NewestWins)."""
        layer, rows = self.layer.value, getattr(self, "_live_rows", 0)
        if layer is None or not is_live(layer) or rows < 1:
            return None
        part = layer.data[:rows]  # complete rows only: frames still to come are zeros
        work = self._check_work(layer, part, part, check_executor("local"))
        total = layer.data.shape[0]

        def shown(value):
            self._show_check(value, live=True)
            self.status.value = f"live: checked the {rows} of {total} scan rows received"

        return (
            lambda: work(lambda _fraction: None),
            self.while_present(shown),
            lambda exc: self.error(str(exc)),
        )

    def _show_report(self) -> None:
        """The report, with the comparisons with the overfocus calibration."""
        report = self.report
        summary = report.summary()
        recorded = recorded_calibration(self.layer.value)
        if recorded is not None and report.com_rotation is not None:
            comparison = compare_rotations(
                report.com_rotation, recorded["scan_rotation"], recorded["flip_y"]
            )
            summary += f"\nvs the overfocus calibration: {comparison}"
        descan = self.descan.comparison()
        if descan is not None:
            summary += f"\n{descan}"
        self.report_label.value = summary

    def _show_check(self, value, live: bool = False) -> None:
        for _ in self._showing_check(value, live):
            pass

    def _showing_check(self, value, live: bool = False):
        """:meth:`_show_check` as a generator, a step per layer: adding seven layers at
        once would freeze the window (``tasks.Steps`` runs one step per event-loop turn)."""
        result, report = value
        self.result, self.report = result, report
        layer = self.layer.value
        for name, image in result.images.items():
            self._scan_image(f" · aperture {name}", image)
            yield
            if self.layer.value is not layer:
                return  # another dataset in front: the rest of this result is dropped
        self.status.value = f"aperture images: {', '.join(result.images)}"
        first = self.find_output(APERTURE_SUM) is None
        # the sum of the frames the apertures saw: compensated ones when they followed
        # the beam (apertures drawn on it then follow the beam too)
        summed = result.followed_sum if result.images_follow_beam else result.aperture_sum
        self.put_output(
            APERTURE_SUM, summed, contrast_limits=robust_limits(summed), **detector_space(layer)
        )
        yield
        for axis, com in (("y", result.com_y), ("x", result.com_x)):
            # a signed field: diverging colours, white at zero
            self.put_output(f" · CoM {axis}", com, **scan_space(layer), **diverging(com))
            yield
        if report.descan is not None:
            magnitude = np.hypot(*report.descan.shift_map)
            self._scan_image(" · descan shift", magnitude, colormap="viridis")
            yield
        if self.layer.value is not layer:
            return
        if self.beam is None and report.beam is not None:
            self.beam_controls.show(report.beam)
        main = self.find_output(" · aperture BF") or self.find_output(" · CoM y")
        if first:  # scan space (the results) in view; detector space beside, or docked
            focus_space(self.viewer, layer, "scan")
            if spaces_drawn_apart(layer):
                from ..._qt.detector_view import show_detector_view

                detector = {"aperture_sum": self.find_output(APERTURE_SUM)}
                show_detector_view(self.viewer, layer, detector)
        show_result(self.viewer, main)
        self._show_report()
        self._update_hint()
        self.status.value = "check done"
        if report.descan_exceeds and not live:  # said once, for the whole scan
            show_warning(
                f"The bright-field disk moves {report.descan.shift_across_scan:.2f} px "
                f"across the scan (tolerance {report.descan_tolerance_px:g} px)."
            )
