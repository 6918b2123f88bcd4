"""The "Overfocus calibration" dock widget: twin controls, live layers, full passes.

Glue only: widget values -> :class:`TwinParams` -> :func:`compute` in a worker thread ->
layer data. The newest parameter change wins: changes are debounced, at most one worker
runs, and a result computed for parameters that have changed since is dropped.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from magicgui import widgets
from napari.utils.notifications import show_error, show_info

from ..._qt.common import (
    ScrollableDock,
    commit_on_enter,
    is_4d_image,
    message_label,
    open_path,
    save_path,
)
from ..._qt.executor import executor_field, pass_source
from ..._qt.history import keep_in_history
from ..._qt.layers import (
    click_only,
    output_layer,
    record_calibration,
    robust_limits,
    show_result,
    upsert_layer,
)
from ..._qt.provenance import FieldSources, instrument_sources
from ..._qt.quantity import QuantitySpinBox
from ..._qt.tasks import LongTask, debounced, start_worker, task_controls
from ...engine import check_executor
from ...errors import Cancelled, EmcalError
from ...geometry import wrap_angle
from ...io.readers import reshape_scan
from ...units import format_si
from ..calibrate import calibrate, estimate, history_values
from ..images import OUTPUTS, compute
from ..preview import reduce_data, reduce_params, reduce_positions
from ..sharpness import blur
from ..twin import TwinParams

__all__ = ["OverfocusWidget"]

#: Layer-name suffixes of the output images (docs/conventions.md).
SUFFIX = {name: f" · {name}" for name in OUTPUTS}
DEBOUNCE_MS = 120
PREVIEW_DETECTOR = 48
PREVIEW_SCAN = 128


class OverfocusWidget(ScrollableDock, widgets.Container):
    """Tune the digital twin of an overfocused 4D STEM dataset and watch it sharpen."""

    def __init__(self, napari_viewer):
        super().__init__(labels=True, scrollable=True)  # fits a laptop screen
        self.viewer = napari_viewer
        self._worker = None
        self._suspend = False
        self._pending = False
        self._generation = 0
        self._preview_cache: tuple | None = None
        self._select: tuple[int, int] | None = None
        self._point: tuple[int, int] | None = None
        self._live_params: TwinParams | None = None  # best so far, shown while calibrating
        self._before_calibration: TwinParams | None = None
        self.last_calibration = None
        self.last_images: dict[str, np.ndarray] = {}
        self.last_params: TwinParams | None = None

        self.layer = widgets.ComboBox(
            label="4D dataset",
            tooltip="the 4D STEM layer (scan y, scan x, detector y, detector x) to calibrate",
            choices=self._layer_choices,
        )
        self.dataset = widgets.ComboBox(
            label="HDF5 dataset",
            choices=self._dataset_choices,
            visible=False,
            tooltip="the file holds several 3D/4D datasets",
        )
        self.scan_shape = widgets.LineEdit(
            label="Scan shape",
            value="",
            tooltip="ny, nx (positions): rearrange the frames into this scan; applies on Enter",
        )
        self.overfocus = QuantitySpinBox(
            label="Overfocus",
            unit="µm",
            value=1.0,
            min=-1e5,
            max=1e5,
            step=0.01,
            tooltip="probe focus above the specimen; negative = underfocus",
        )
        self.camera_length = QuantitySpinBox(
            label="Camera length",
            unit="mm",
            value=150.0,
            min=-1e6,
            max=1e6,
            step=1.0,
            tooltip="specimen to detector",
        )
        self.scan_step = QuantitySpinBox(
            label="Scan step",
            unit="nm",
            value=1.0,
            min=-1e6,
            max=1e6,
            step=0.01,
            tooltip="distance between scan positions at the specimen",
        )
        self.detector_pixel = QuantitySpinBox(
            label="Detector pixel",
            unit="µm",
            value=55.0,
            min=-1e6,
            max=1e6,
            step=0.1,
            tooltip="physical size of one detector pixel",
        )
        self.scan_rotation = widgets.FloatSpinBox(
            label="Scan rotation (°)",
            value=0.0,
            min=-180.0,
            max=180.0,
            step=0.01,
            tooltip="rotation of the scan against the detector, degrees (R(θ)·F, as "
            "LiberTEM's scan_rotation)",
        )
        self.scan_rotation.native.setDecimals(4)  # a calibration's 0.001° is kept
        self.rotation_slider = widgets.FloatSlider(
            label="",
            value=0.0,
            min=-180.0,
            max=180.0,
            step=0.01,
            readout=False,
            tooltip="scan rotation, degrees: drag to turn; the box above holds 0.0001°",
        )
        self.flip_y = widgets.CheckBox(label="Flip Y", value=False)
        self.cy = widgets.FloatSpinBox(
            label="Beam centre y (px)", value=0.0, min=-1e5, max=1e5, step=0.1
        )
        self.cx = widgets.FloatSpinBox(
            label="Beam centre x (px)", value=0.0, min=-1e5, max=1e5, step=0.1
        )
        self.semiconv = QuantitySpinBox(
            label="Semi-conv.",
            unit="mrad",
            value=0.0,
            min=0.0,
            max=1e4,
            step=0.1,
            tooltip="convergence semi-angle, limits the shadow image to the bright-field "
            "disk; 0 = use every pixel",
        )
        #: the controls that hold a twin parameter with a unit, by the parameter's name
        self._quantities = {
            "overfocus": self.overfocus,
            "scan_pixel_size": self.scan_step,
            "camera_length": self.camera_length,
            "detector_pixel_size": self.detector_pixel,
            "semiconv": self.semiconv,
        }
        #: where each twin value came from, shown on its control
        self.field_sources = FieldSources(
            {
                **self._quantities,
                "cy": self.cy,
                "cx": self.cx,
                "scan_rotation": self.scan_rotation,
                "flip_y": self.flip_y,
            }
        )
        self.preview = widgets.CheckBox(
            label="Preview (reduced data)",
            tooltip="live updates on a binned detector / every n-th scan position; the full "
            "pass runs on demand",
            value=True,
        )
        self.detector_bin = widgets.SpinBox(
            label="Detector bin",
            tooltip="detector pixels summed per side in the preview (1 = none)",
            value=1,
            min=1,
            max=64,
        )
        self.scan_every = widgets.SpinBox(
            label="Scan: every n-th",
            tooltip="scan positions used in the preview along each axis (1 = all)",
            value=1,
            min=1,
            max=64,
        )
        self.fit_centre = widgets.CheckBox(
            label="Fit beam centre", value=True, tooltip="take cy, cx from the bright-field disk"
        )
        self.estimate_button = widgets.PushButton(
            text="Estimate", tooltip="rotation, flip and overfocus from parallax (seconds)"
        )
        self.optimise_button = widgets.PushButton(
            text="Optimise", tooltip="estimate, then refine to the sharpest shifted_sum"
        )
        self.accept_button = widgets.PushButton(
            text="Accept",
            tooltip="keep the calibrated parameters (also recorded on the layer for the "
            "dataset check)",
            enabled=False,
        )
        self.revert_button = widgets.PushButton(
            text="Revert",
            tooltip="go back to the parameters from before the calibration",
            enabled=False,
        )
        self.calibration_status = message_label("Calibration", "—")
        self.full_button = widgets.PushButton(
            text="Full-resolution pass",
            tooltip="compute the five images from all the data, in a worker (Esc cancels)",
        )
        self.status = message_label()
        self.executor = executor_field(self.status)
        self.progress, self.cancel_button = task_controls(
            "stop the running task (Esc); the layers keep the last result"
        )
        self.save_button = widgets.PushButton(
            text="Save parameters…",
            tooltip="write the twin parameters, with units and uncertainties, to JSON",
        )
        self.load_button = widgets.PushButton(
            text="Load parameters…",
            tooltip="read twin parameters from a JSON file (any known units)",
        )
        self.libertem_button = widgets.PushButton(
            text="Copy for LiberTEM",
            tooltip="copy scan_rotation (°), flip_y, cy, cx (px) as LiberTEM's CoM arguments",
        )
        self.send_check_button = widgets.PushButton(
            text="Use rotation and flip in 4D dataset check",
            tooltip="send scan_rotation (°) and flip_y to the 4D dataset check (docked if "
            "needed), whose report compares them with the CoM rotation",
        )
        self.sharpness = widgets.Label(label="Blur (0 = sharp)", value="—")
        self.extend(
            [
                self.layer,
                self.dataset,
                self.scan_shape,
                self.overfocus,
                self.camera_length,
                self.scan_step,
                self.detector_pixel,
                self.scan_rotation,
                self.rotation_slider,
                self.flip_y,
                self.cy,
                self.cx,
                self.semiconv,
                self.preview,
                self.detector_bin,
                self.scan_every,
                self.fit_centre,
                self.estimate_button,
                self.optimise_button,
                self.accept_button,
                self.revert_button,
                self.calibration_status,
                self.executor,
                self.full_button,
                self.cancel_button,
                self.progress,
                self.save_button,
                self.load_button,
                self.libertem_button,
                self.send_check_button,
                self.sharpness,
                self.status,
            ]
        )
        # the one long task (preview read, full pass, calibration) at a time
        self.task = LongTask(
            self.native,
            self.progress,
            self.cancel_button,
            self.status,
            on_poll=self._show_live_params,
            report_error=self._error,
        )

        self._timer = debounced(self.native, DEBOUNCE_MS, self.update_now)

        for w in (
            self.overfocus,
            self.camera_length,
            self.scan_step,
            self.detector_pixel,
            self.flip_y,
            self.cy,
            self.cx,
            self.semiconv,
        ):
            w.changed.connect(self.schedule_update)
        self.scan_rotation.changed.connect(self._rotation_from_box)
        self.rotation_slider.changed.connect(self._rotation_from_slider)
        for w in (self.preview, self.detector_bin, self.scan_every):
            w.changed.connect(self._preview_settings_changed)
        self.layer.changed.connect(self._layer_changed)
        commit_on_enter(self.scan_shape, self._reshape)
        self.dataset.changed.connect(self._dataset_changed)
        self.full_button.changed.connect(self.run_full)
        self.estimate_button.changed.connect(lambda: self.run_calibration(refine=False))
        self.optimise_button.changed.connect(lambda: self.run_calibration(refine=True))
        self.accept_button.changed.connect(self.accept_calibration)
        self.revert_button.changed.connect(self.revert_calibration)
        self.save_button.changed.connect(self._save_dialog)
        self.load_button.changed.connect(self._load_dialog)
        self.libertem_button.changed.connect(self.copy_for_libertem)
        self.send_check_button.changed.connect(lambda: self.send_to_check())
        self.viewer.layers.events.inserted.connect(self._refresh_choices)
        self.viewer.layers.events.removed.connect(self._refresh_choices)
        self._layer_changed()

    # -- layers --------------------------------------------------------------------------
    def _layer_choices(self, _widget=None):
        return [(layer.name, layer) for layer in self.viewer.layers if is_4d_image(layer)]

    def _dataset_choices(self, _widget=None) -> list[str]:
        """The 3D/4D datasets of the layer's HDF5 file (empty for other formats)."""
        layer = self.layer.value
        return list(layer.metadata.get("emcal", {}).get("datasets") or []) if layer else []

    def _refresh_choices(self, event=None):
        self.layer.reset_choices()

    def set_layer(self, layer) -> None:
        """Work on ``layer`` (a 4D image layer)."""
        if not is_4d_image(layer):
            self._error(
                f"'{getattr(layer, 'name', layer)}' is not a 4D image layer "
                "(scan_y, scan_x, det_y, det_x); pick a 4D STEM dataset."
            )
            return
        self._refresh_choices()
        self.layer.value = layer

    def _update_hint(self) -> None:
        if self.layer.value is None:
            text = "open a 4D STEM dataset (File > Open, or File > Open Sample > napari-emcal)"
        elif self.accept_button.enabled:
            text = "Accept or Revert the calibration"
        elif getattr(self, "last_calibration", None) is None:
            text = (
                "Optimise finds rotation, flip and overfocus from any start; click the "
                "point image to pick the frame for 'selected'"
            )
        else:
            text = "Save parameters, Copy for LiberTEM, or use the rotation in the dataset check"
        self.show_hint(text)

    def _layer_changed(self, event=None):
        layer = self.layer.value
        self._preview_cache = None
        self._select = self._point = None
        self._update_hint()
        if layer is None:
            self.status.value = "Open a 4D STEM dataset (File > Open, or a sample)."
            return
        with self.scan_shape.changed.blocked():
            self.scan_shape.value = f"{layer.data.shape[0]}, {layer.data.shape[1]}"
        md = layer.metadata.get("emcal", {})
        datasets = self._dataset_choices()
        with self.dataset.changed.blocked():
            self.dataset.reset_choices()
            if md.get("dataset") in datasets:
                self.dataset.value = md["dataset"]
        self.dataset.visible = len(datasets) > 1
        self._prefill(layer)
        self.schedule_update()

    def _prefill(self, layer) -> None:
        """Fill the controls from what the file says (layer.metadata['emcal'])."""
        md = layer.metadata.get("emcal", {})
        det_shape = layer.data.shape[2:]
        self._suspend = True
        known = TwinParams.known_from_metadata(md)
        try:
            with self.field_sources.quiet():
                self.cy.value = known.get("cy", (det_shape[0] - 1) / 2)
                self.cx.value = known.get("cx", (det_shape[1] - 1) / 2)
                for name, value in known.items():
                    if name in self._quantities:
                        self._quantities[name].si = value
                    elif name == "scan_rotation":
                        self.scan_rotation.value = wrap_angle(value)
                    elif name == "flip_y":
                        self.flip_y.value = bool(value)
        finally:
            self._suspend = False
        if md.get("nominal"):
            sources = dict.fromkeys(known, "the sample's nominal twin (to be calibrated)")
        else:
            recorded = instrument_sources(md)
            sources = {
                twin: recorded.get(name)
                for twin, name in (
                    ("scan_pixel_size", "scan_step"),
                    ("detector_pixel_size", "detector_pixel_size"),
                    ("camera_length", "camera_length"),
                )
                if twin in known
            }
        self.field_sources.filled(sources)
        # Preview defaults that keep a live update near 0.1 s (benchmarks/…responsiveness):
        # a binned detector of at most PREVIEW_DETECTOR px, a scan of at most PREVIEW_SCAN.
        self.detector_bin.value = max(1, math.ceil(max(det_shape) / PREVIEW_DETECTOR))
        self.scan_every.value = max(1, math.ceil(max(layer.data.shape[:2]) / PREVIEW_SCAN))

    def _reshape(self, event=None):
        layer = self.layer.value
        if layer is None:
            return
        try:
            shape = tuple(int(v) for v in self.scan_shape.value.replace("x", ",").split(","))
            layer.data = reshape_scan(layer.data, shape)
        except (ValueError, EmcalError) as exc:
            self._error(f"Scan shape: {exc}")
            return
        self._preview_cache = None
        self._select = self._point = None
        self.schedule_update()

    def _dataset_changed(self, name=None):
        """Re-open the layer's HDF5 file on another of its 3D/4D datasets (lazily)."""
        from ...io.readers import open_4d, sample_contrast_limits

        layer = self.layer.value
        md = layer.metadata.get("emcal", {}) if layer is not None else {}
        if not name or name == md.get("dataset"):
            return
        try:
            ds = open_4d(md["source"], dataset=name)
            limits = sample_contrast_limits(ds.data)
        except EmcalError as exc:
            self._error(str(exc))
            return
        for note in ds.notes:
            if "several" not in note:
                show_info(note)
        layer.metadata = {**layer.metadata, "emcal": ds.metadata}
        layer.data = ds.data
        layer.contrast_limits = limits
        self._layer_changed()

    def output_layer(self, name: str):
        """The output layer ``<source> · name``, or None."""
        return output_layer(self.viewer, self.layer.value, SUFFIX[name])

    # -- parameters ---------------------------------------------------------------------
    def params(self) -> TwinParams:
        """The twin parameters the controls show (SI units)."""
        values = {name: field.si for name, field in self._quantities.items()}
        values["semiconv"] = values["semiconv"] or None  # 0 = every pixel
        return TwinParams(
            **values,
            cy=self.cy.value,
            cx=self.cx.value,
            scan_rotation=self.scan_rotation.value,
            flip_y=self.flip_y.value,
        )

    def _valid_params(self) -> TwinParams | None:
        """The controls' parameters, or None after telling the user what is wrong."""
        try:
            return self.params()
        except EmcalError as exc:
            self._error(str(exc))
            return None

    def set_params(
        self,
        params: TwinParams,
        *,
        update: bool = True,
        source: str | None = None,
        names=None,
    ) -> None:
        """Show ``params`` in the controls (and recompute). ``source`` says where the
        values of ``names`` (default: all) came from."""
        suspended, self._suspend = self._suspend, True
        try:
            with self.field_sources.quiet():
                for name, field in self._quantities.items():
                    field.si = getattr(params, name) or 0.0  # semiconv None shows as 0
                self.cy.value, self.cx.value = params.cy, params.cx
                self.scan_rotation.value = wrap_angle(params.scan_rotation)
                self.flip_y.value = params.flip_y
        finally:
            self._suspend = suspended
        if source is not None:
            for name in names or self.field_sources.fields:
                self.field_sources.set(name, source)
        if update:
            self.schedule_update()

    def _rotation_from_box(self, value):
        if not math.isclose(self.rotation_slider.value, value, abs_tol=1e-9):
            with self.rotation_slider.changed.blocked():
                self.rotation_slider.value = value
        self.schedule_update()

    def _rotation_from_slider(self, value):
        if not math.isclose(self.scan_rotation.value, value, abs_tol=1e-9):
            self.scan_rotation.value = value  # triggers _rotation_from_box

    def _preview_settings_changed(self, event=None):
        self._preview_cache = None
        self.schedule_update()

    # -- live updates -------------------------------------------------------------------
    def schedule_update(self, event=None) -> None:
        """Recompute after a short pause (parameter changes arrive in bursts)."""
        if self._suspend:
            return
        self._generation += 1
        self._timer.start()

    def _factors(self) -> tuple[int, int]:
        """(detector bin, scan every n-th) of the live updates."""
        return (self.detector_bin.value, self.scan_every.value) if self.preview.value else (1, 1)

    def _live_data(self, layer):
        """The data live updates compute from, or None while it must first be read.

        Without reduction that is the layer's own (possibly lazy) array; a reduced copy is
        read once per layer and setting, as a long task with progress and cancel.
        """
        factors = self._factors()
        if factors == (1, 1):
            return layer.data
        key = (id(layer.data), factors)
        if self._preview_cache is not None and self._preview_cache[0] == key:
            return self._preview_cache[1]
        data = layer.data

        def read(report):
            return key, reduce_data(data, *factors, progress=report)

        def done(result):
            self._preview_cache = result
            self.update_now()

        self._run_long("reading preview data", read, done)
        return None

    def update_now(self) -> None:
        """Start a worker for the current parameters, or queue one behind the running one."""
        layer = self.layer.value
        params = self._valid_params()
        if layer is None or params is None:
            return
        if self._worker is not None:
            self._pending = True
            return
        data = self._live_data(layer)
        if data is None:
            return  # update_now runs again once the preview data are read
        generation = self._generation
        select, point = self._select, self._point
        bin_, every = self._factors()
        reduced_params = reduce_params(params, bin_, every)

        def work():
            sel, pt = reduce_positions(select, point, bin_, every, data.shape)
            images = compute(data, reduced_params, select=sel, point=pt)
            return images, reduced_params, data.shape[2:], (bin_, every)

        self.status.value = "computing…"
        self._worker = start_worker(
            work,
            lambda result: self._show(result, generation, params),
            lambda exc: self._error(str(exc)),
            self._worker_finished,
        )

    def _worker_finished(self):
        self._worker = None
        if self._pending:
            self._pending = False
            self.update_now()

    def _show(self, result, generation, params, label=None):
        images, used_params, det_shape, factors = result
        if generation != self._generation:
            return  # parameters changed meanwhile: the newer request will draw
        if self.layer.value is None or self.layer.value not in self.viewer.layers:
            self.status.value = "the dataset layer was removed: its result is dropped"
            return
        self.last_images, self.last_params = images, params
        value = blur(images["shifted_sum"], used_params, det_shape)
        self.sharpness.value = f"{value:.4f}"
        reduced = factors != (1, 1)
        self.status.value = label or (
            f"preview: detector bin {factors[0]}, every {factors[1]} scan position(s)"
            if reduced
            else "full resolution"
        )
        self._update_layers(images, factors)

    def _update_layers(self, images, factors):
        layer = self.layer.value
        scan_scale = np.asarray(layer.scale[:2]) * factors[1]
        det_scale = np.asarray(layer.scale[2:]) * factors[0]
        # detector space beside scan space, never stacked on it: the aperture sum (and the
        # 4D layer's frames, in the same detector space) sit right of the scan images
        scan_width = layer.data.shape[1] * float(layer.scale[1])
        beside = np.array([0.0, scan_width * 1.05])
        created = False
        for name, image in images.items():
            detector = name == "aperture_sum"
            new = self.output_layer(name) is None
            shown = upsert_layer(
                self.viewer,
                layer,
                SUFFIX[name],
                image,
                scale=det_scale if detector else scan_scale,
                translate=beside if detector else np.zeros(2),
                # (no units: napari keeps one unit per world axis, and these 2D images sit
                # on the axes where the 4D layer shows the detector, in pixels)
                contrast_limits=robust_limits(image),
                metadata={"emcal": {"role": name, "source": layer.name}},
            )
            if not new:
                continue
            created = True
            if name == "point":
                shown.mouse_drag_callbacks.append(click_only(self._clicked_point_image))
            elif name == "aperture_sum":
                shown.mouse_drag_callbacks.append(click_only(self._clicked_aperture))
        if created:
            if not np.any(layer.translate[2:]):
                layer.translate = (*layer.translate[:2], *beside)
            self.viewer.reset_view()  # scan and detector images both in view
            self.show_result()

    def show_result(self) -> None:
        """The sharp ``shifted_sum`` on top, selected."""
        show_result(self.viewer, self.output_layer("shifted_sum"))

    # -- clicks (a click, not the start of a pan) -------------------------------------------
    def _clicked_point_image(self, layer, data_yx):
        y, x = np.round(data_yx).astype(int)
        every = self.scan_every.value if self.preview.value else 1
        self.select_frame((y * every, x * every))

    def _clicked_aperture(self, layer, data_yx):
        y, x = np.round(data_yx).astype(int)
        bin_ = self.detector_bin.value if self.preview.value else 1
        self.select_point((y * bin_, x * bin_))

    def select_frame(self, scan_yx) -> None:
        """Use the frame at scan position ``scan_yx`` for ``selected``."""
        shape = self.layer.value.data.shape[:2]
        if not (0 <= scan_yx[0] < shape[0] and 0 <= scan_yx[1] < shape[1]):
            return
        self._select = tuple(int(v) for v in scan_yx)
        self.schedule_update()

    def select_point(self, detector_yx) -> None:
        """Use detector pixel ``detector_yx`` for ``point``."""
        shape = self.layer.value.data.shape[2:]
        if not (0 <= detector_yx[0] < shape[0] and 0 <= detector_yx[1] < shape[1]):
            return
        self._point = tuple(int(v) for v in detector_yx)
        self.schedule_update()

    # -- long tasks: progress bar and cancel ----------------------------------------------
    def _run_long(self, label: str, work, on_result, on_error=None) -> bool:
        """Run ``work(report)`` in a worker with progress and cancel; one at a time.

        See :class:`~napari_emcal._qt.tasks.LongTask`. Returns False (and starts nothing)
        while another long task runs.
        """
        return self.task.start(label, work, on_result, on_error=on_error)

    def _show_live_params(self):
        live, self._live_params = self._live_params, None
        if live is not None:
            self.set_params(live)  # the controls and layers follow the calibration

    def cancel(self, event=None):
        """Stop the running long task at its next progress report."""
        self.task.cancel()

    # -- full-resolution pass ----------------------------------------------------------
    def run_full(self, event=None):
        """Compute all images at full resolution in a worker, with progress and cancel."""
        layer = self.layer.value
        params = self._valid_params()
        if layer is None or params is None:
            return
        generation = self._generation
        select, point, data = self._select, self._point, layer.data
        try:
            executor = check_executor(self.executor.value)
        except EmcalError as exc:
            self._error(str(exc))
            return
        source = pass_source(layer, executor)

        def work(report):
            images = compute(
                source, params, select=select, point=point, progress=report, executor=executor
            )
            return images, params, data.shape[2:], (1, 1)

        if not self._run_long(
            "full-resolution pass",
            work,
            lambda r: self._show(r, generation, params, "full resolution"),
        ):
            self.status.value = "another task is running: cancel it first"

    # -- automatic calibration -------------------------------------------------------------
    def run_calibration(self, refine: bool = True) -> None:
        """Estimate (and with ``refine``, optimise) the twin in a worker; live, cancellable."""
        layer = self.layer.value
        start = self._valid_params()
        if layer is None or start is None:
            return
        free = ("scan_rotation", "flip_y", "overfocus") + (
            ("cy", "cx") if self.fit_centre.value else ()
        )
        data = layer.data

        def work(report):
            def progress(fraction, params):
                report(fraction)
                if params is not None:
                    self._live_params = params

            if refine:
                return calibrate(data, start, free=free, progress=progress)
            return estimate(data, start, free=free, progress=progress)

        label = "optimising the twin" if refine else "estimating the twin"
        if self._run_long(label, work, self._calibrated, self._calibration_stopped):
            self._before_calibration = start
        else:
            self.status.value = "another task is running: cancel it first"

    def _calibrated(self, result) -> None:
        self._live_params = None
        if self.layer.value is None:
            self._before_calibration = None
            self.accept_button.enabled = self.revert_button.enabled = False
            self.calibration_status.value = "the dataset layer was removed: nothing to accept"
            return
        params = result if isinstance(result, TwinParams) else result.params
        self.last_calibration = result
        free = ["scan_rotation", "flip_y", "overfocus"] + (
            ["cy", "cx"] if self.fit_centre.value else []
        )
        self.set_params(params, source="computed by the automatic calibration", names=free)
        self.show_result()
        self.accept_button.enabled = self.revert_button.enabled = True
        self._update_hint()
        summary = (
            f"rotation {params.scan_rotation:.3f}°, flip {params.flip_y}, "
            f"overfocus {format_si(params.overfocus, 'µm', 4)}"
        )
        if isinstance(result, TwinParams):
            self.calibration_status.value = f"estimate: {summary}. Accept, Revert or Optimise."
        else:
            sigma = result.uncertainty
            errors = ", ".join(
                f"{name} ± {value:.3f}°"
                if name == "scan_rotation"
                else f"overfocus ± {format_si(value, 'µm', 4)}"
                for name, value in sigma.items()
                if name in ("scan_rotation", "overfocus")
            )
            margin = (
                f"; handedness {result.flip_margin:.0f} σ from the other"
                if result.flip_margin is not None
                else ""
            )
            self.calibration_status.value = (
                f"optimised ({result.n_evaluations} evaluations, "
                f"correlation {result.score:.3f}): {summary}; {errors}{margin}. "
                "Accept or Revert."
            )

    def _calibration_stopped(self, exc) -> None:
        """A calibration that failed or was cancelled changes nothing."""
        self._live_params = None
        self.revert_calibration()
        self.calibration_status.value = (
            "cancelled" if isinstance(exc, Cancelled) else "failed: see the message"
        )

    def accept_calibration(self, event=None) -> None:
        """Keep the calibrated parameters (also on the layer, for the dataset check)."""
        self._before_calibration = None
        self.accept_button.enabled = self.revert_button.enabled = False
        self.calibration_status.value = "accepted"
        self._update_hint()
        layer, params = self.layer.value, self.params()
        if layer is not None:
            result = getattr(self, "last_calibration", None)
            uncertainty = getattr(result, "uncertainty", None) or {}
            record_calibration(layer, params.scan_rotation, params.flip_y, uncertainty)
            if result is not None and not isinstance(result, TwinParams):
                values, sigma = history_values(result)
                kept = keep_in_history("overfocus", values, sigma, source=layer.name)
                self.calibration_status.value = f"accepted; {kept}"

    def revert_calibration(self, event=None) -> None:
        """Go back to the parameters from before the calibration."""
        if self._before_calibration is not None and self._before_calibration != self.params():
            self.set_params(self._before_calibration)
        self._before_calibration = None
        self.accept_button.enabled = self.revert_button.enabled = False
        self.calibration_status.value = "reverted to the parameters before the calibration"
        self._update_hint()

    # -- files and clipboard -------------------------------------------------------------
    def save_params(self, path) -> None:
        self.params().save(path)
        self.status.value = f"saved {Path(path).name}"

    def load_params(self, path) -> None:
        try:
            self.set_params(TwinParams.load(path), source=f"loaded from {Path(path).name}")
        except (EmcalError, OSError) as exc:
            self._error(f"Could not load {Path(path).name}: {exc}")

    def _save_dialog(self, event=None):
        path = save_path(None, "Save twin parameters", "twin.json", "JSON (*.json)")
        if path:
            try:
                self.save_params(path)
            except (EmcalError, OSError) as exc:
                self._error(str(exc))

    def _load_dialog(self, event=None):
        path = open_path(None, "Load twin parameters", "JSON (*.json)")
        if path:
            self.load_params(path)

    def libertem_text(self) -> str:
        return self.params().libertem_com_text()

    def copy_for_libertem(self, event=None) -> str:
        """Put LiberTEM centre-of-mass arguments on the clipboard (and return them)."""
        text = self.libertem_text()
        from qtpy.QtWidgets import QApplication

        QApplication.clipboard().setText(text)
        self.status.value = f"copied: {text}"
        show_info(f"Copied for LiberTEM CoM: {text}")
        return text

    def send_to_check(self):
        """Put the scan rotation and flip into the 4D dataset check (docked if needed)."""
        layer = self.layer.value
        if layer is None:
            self._error("Choose a 4D dataset layer first.")
            return None
        params = self.params()
        _, check = self.viewer.window.add_plugin_dock_widget("napari-emcal", "4D dataset check")
        check.set_layer(layer)
        check.scan_rotation.value, check.flip_y.value = params.scan_rotation, params.flip_y
        self.status.value = "scan rotation and flip sent to the 4D dataset check"
        return check

    def _error(self, message: str) -> None:
        self.status.value = f"⚠ {message}"
        show_error(message)
