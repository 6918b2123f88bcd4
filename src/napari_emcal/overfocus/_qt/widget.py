"""The "Overfocus calibration" dock widget: twin controls, live layers, full passes.

Glue only: the twin's controls -> :class:`TwinParams` -> :func:`compute` in a worker
thread -> layer data. The newest parameter change wins (:class:`NewestWins`): changes
are debounced, at most one worker runs, and a result computed for parameters that have
changed since is dropped. The calibration section is :mod:`.calibration`.

The state that is not a control (the twin last settled, the calibration pending or
accepted, the last images) is the :class:`~napari_emcal.overfocus.session.OverfocusSession`;
the sections call it and observe it. Pointing the dock at other data (another layer,
another dataset of the file, another scan shape, new data in the layer) re-targets the
session: nothing derived from the previous data stays.
"""

from __future__ import annotations

from magicgui import widgets

from ..._qt.dock import ToolDock
from ..._qt.executor import executor_field, pass_source
from ..._qt.live import LivePanel, is_live
from ..._qt.source4d import Source4D
from ..._qt.tasks import NewestWins, start_worker
from ...engine import check_executor
from ...errors import Cancelled, EmcalError
from ..images import compute, warm_up
from ..preview import reduce_params, reduce_positions
from ..session import OverfocusSession
from ..sharpness import blur
from ..twin import TwinParams
from .actions import ParameterActions
from .calibration import CalibrationPanel
from .controls import TwinControls
from .kernels import kernels_ready, wait_for_kernels
from .outputs import OutputImages
from .preview import PreviewControls

__all__ = ["OverfocusWidget"]

DEBOUNCE_MS = 120


class OverfocusWidget(ToolDock):
    """Tune the digital twin of an overfocused 4D STEM dataset and watch it sharpen."""

    def __init__(self, napari_viewer):
        super().__init__(napari_viewer)
        self.session = OverfocusSession()
        self.outputs = OutputImages(self)

        self.source = Source4D(
            self, "the 4D STEM layer (scan y, scan x, detector y, detector x) to calibrate"
        )
        self.layer, self.scan_shape, self.dataset = (
            self.source.layer,
            self.source.scan_shape,
            self.source.dataset,
        )
        self.live = LivePanel(self)
        self.twin = TwinControls()
        self.preview = PreviewControls()
        self.calibration = CalibrationPanel(self, self.session)
        self.full_button = widgets.PushButton(
            text="Full-resolution pass",
            tooltip="compute the five images from all the data, in a worker (Esc cancels)",
        )
        self.executor = executor_field(self.status)
        # the one long task (preview read, full pass, calibration) at a time
        self.task = self.long_task(
            "stop the running task (Esc); the layers keep the last result",
            on_poll=self._poll,
        )
        self.actions = ParameterActions(self, self.session)
        self.sharpness = widgets.Label(label="Blur (0 = sharp)", value="—")
        self.sharpness.tooltip = "blur of shifted_sum at the twin's parameters: 0 = sharp"
        self.extend(
            [
                self.source,
                self.live,
                self.twin,
                self.preview,
                self.calibration,
                self.executor,
                self.full_button,
                self.cancel_button,
                self.progress,
                self.actions,
                self.sharpness,
                self.status,
            ]
        )
        self.updates = NewestWins(self.native, DEBOUNCE_MS, self._live_update)

        self.twin.edited.connect(self._edited)
        self.preview.changed.connect(self.schedule_update)
        self.session.show_params.connect(self._show_params)
        self.session.calibration_changed.connect(self.update_hint)
        self.layer.changed.connect(self._layer_changed)
        self.source.reopened.connect(self._layer_changed)
        self.source.reshaped.connect(self._reshaped)
        self.source.replaced.connect(self._layer_changed)
        self.full_button.changed.connect(self.run_full)
        self._layer_changed()
        # the kernels compile in a subprocess (into numba's cache) while the user looks
        # around, then load here in a worker: the first parameter change does not wait
        # ~2-5 s for them, and no compile holds this process's GIL (the window)
        kernels_ready()
        start_worker(_load_kernels, lambda _done: None, lambda _exc: None)

    # -- the dataset --------------------------------------------------------------------
    def set_layer(self, layer) -> None:
        """Work on ``layer`` (a 4D image layer)."""
        self.source.set_layer(layer)

    def update_hint(self) -> None:
        if self.layer.value is None:
            text = "open a 4D STEM dataset (File > Open, or File > Open Sample > napari-emcal)"
        elif self.session.pending is not None:
            text = "Accept or Revert the calibration"
        elif self.session.last_calibration is None:
            text = (
                "Optimise finds rotation, flip and overfocus from any start; click the "
                "point image to pick the frame for 'selected'"
            )
        else:
            text = "Save parameters, Copy for LiberTEM, or use the rotation in the dataset check"
        self.show_hint(text)

    def _layer_changed(self, event=None):
        """Another dataset: everything derived from the previous one is derived again
        (the twin from the file's metadata) or forgotten (calibration, images, picks)."""
        layer = self.layer.value
        interrupted = self.session.running
        settled = self.session.settled
        self.outputs.forget_picks()
        self.preview.forget()
        if layer is None:
            self.session.retarget(None, settled)
            self.update_hint()
            if interrupted and settled is not None:
                self.twin.show(settled)
            self.status.value = (
                "the dataset layer was removed: the run was stopped and the controls show "
                "the parameters from before it"
                if interrupted
                else "Open a 4D STEM dataset (File > Open, or a sample)."
            )
            return
        self.twin.prefill(layer.metadata.get("emcal", {}), layer.data.shape[2:])
        self.preview.suit(layer.data.shape)
        self.session.retarget(layer, self.twin_or_none())
        self.update_hint()
        if interrupted:
            self.status.value = (
                "the dataset changed: the run on the previous one was stopped, its result dropped"
            )
        self.schedule_update()

    def _reshaped(self) -> None:
        """The frames in another scan shape: images and calibration were of the old one."""
        self.outputs.forget_picks()
        self.preview.forget()
        self.session.retarget(self.layer.value, self.twin_or_none())
        self.update_hint()
        self.schedule_update()

    def twin_or_none(self) -> TwinParams | None:
        try:
            return self.params()
        except EmcalError:
            return None

    def output_layer(self, name: str):
        """The output layer ``<source> · name``, or None."""
        return self.outputs.layer(name)

    def show_result(self) -> None:
        """The sharp ``shifted_sum`` on top, selected."""
        self.outputs.show_result()

    # -- parameters ---------------------------------------------------------------------
    def params(self) -> TwinParams:
        """The twin parameters the controls show (SI units)."""
        return self.twin.params()

    def valid_params(self) -> TwinParams | None:
        """The controls' parameters, or None after telling the user what is wrong."""
        try:
            return self.params()
        except EmcalError as exc:
            self.error(str(exc))
            return None

    def set_params(self, params: TwinParams, *, update=True, source=None, names=None) -> None:
        """Show ``params`` in the controls (and recompute). ``source`` says where the
        values of ``names`` (default: all) came from."""
        self.twin.show(params, source=source, names=names)
        self.session.settle(params)
        if update:
            self.schedule_update()

    def _show_params(self, params: TwinParams, source=None, names=None) -> None:
        """The session asks for ``params`` to be shown (a calibration, Revert, a load)."""
        self.twin.show(params, source=source, names=names)
        self.schedule_update()

    def _edited(self) -> None:
        self.session.settle(self.twin_or_none())
        self.schedule_update()

    def receive_beam_centre(self, cy: float, cx: float, source: str) -> None:
        """Take the beam centre (detector px) that another dock found."""
        params = self.valid_params()
        if params is None:
            return
        self.session.use(params.replace(cy=cy, cx=cx), source, ["cy", "cx"])

    def receive_descan(self, descan, centre, source: str) -> None:
        """Take the descan (2x2, detector px per scan px) and the beam centre at the scan
        centre (cy, cx, px) that another dock fitted."""
        params = self.valid_params()
        if params is None:
            return
        cy, cx = (float(v) for v in centre)
        descan = tuple(tuple(float(v) for v in row) for row in descan)
        shown = [n for n in ("descan", "cy", "cx") if n in self.twin.field_sources.fields]
        self.session.use(params.replace(descan=descan, cy=cy, cx=cx), source, shown)

    def _poll(self):
        """While a long task runs: show what it handed over (parameters, live frames)."""
        live = self.session.take_live()
        if live is not None:
            self.twin.show(live)  # the controls and layers follow the calibration
            self.schedule_update()
        self.live.poll()

    def use_live_layer(self, add):
        """Make the layer ``add()`` adds the dataset; a stream records no lengths, so the
        twin typed before stays (adding the layer may already make it the dataset, which
        prefills the controls: the values are taken first)."""
        keep = self.valid_params()
        layer = add()
        self.set_layer(layer)
        if keep is not None:
            self.set_params(keep, update=False, source="typed before the acquisition")
        return layer

    def data_arrived(self, received: int | None = None) -> None:
        """The dataset layer's frames changed in place (a live acquisition filling in:
        ``received`` frames so far; the images use all, the ones to come are zero)."""
        self.preview.forget()
        self.updates.request(invalidate=False)

    # -- live updates -------------------------------------------------------------------
    def schedule_update(self, event=None) -> None:
        """Recompute after a short pause (parameter changes arrive in bursts)."""
        self.updates.request()

    def update_now(self) -> None:
        """Start a worker for the current parameters, or queue one behind the running one."""
        self.updates.run_now()

    def _live_data(self, layer):
        """``read()`` giving the data a live update computes from, or None while the
        preview's reduced copy is read first (a long task with progress and cancel; the
        update runs again after). While a live acquisition holds the long task, each
        update reduces the frames that have arrived itself."""
        data = self.preview.data(layer)
        if data is not None:
            return lambda: data
        reader = self.preview.reader(layer)
        if self.task.running and is_live(layer):
            return lambda: reader(lambda _fraction: None)[1]

        def done(read):
            self.preview.keep(read)
            self.update_now()

        self.task.start("reading preview data", reader, done)
        return None

    def _live_update(self):
        """The work of one live update, for :class:`NewestWins` (None: nothing to do)."""
        layer, params = self.layer.value, self.valid_params()
        if layer is None or params is None:
            return None
        read = self._live_data(layer)
        if read is None:
            return None  # update_now runs again once the preview data are read
        select, point = self.outputs.select, self.outputs.point
        bin_, every = self.preview.factors
        reduced_params = reduce_params(params, bin_, every, layer.data.shape[:2])

        def work():
            data = read()
            wait_for_kernels()
            sel, pt = reduce_positions(select, point, bin_, every, data.shape)
            images = compute(data, reduced_params, select=sel, point=pt)
            return images, reduced_params, data.shape[2:], (bin_, every)

        if not self.status.value.startswith("⚠"):  # a warning is news; "computing" is not
            self.status.value = "computing…"
        token = self.session.run_token()
        return (
            work,
            lambda result: self._show(token, result, params),
            lambda e: self.error(str(e)),
        )

    def _show(self, token, result, params, label=None):
        """Show a pass's result; returns the layer updates as steps (``tasks.Steps``)."""
        images, used_params, det_shape, factors = result
        if self.layer.value is None or self.layer.value not in self.viewer.layers:
            self.status.value = "the dataset layer was removed: its result is dropped"
            return None
        if not self.session.images_computed(token, images, params):
            return None  # computed from the previous data
        self.sharpness.value = f"{blur(images['shifted_sum'], used_params, det_shape):.4f}"
        self.status.value = label or (
            f"preview: detector bin {factors[0]}, every {factors[1]} scan position(s)"
            if factors != (1, 1)
            else "full resolution"
        )
        return self.outputs.updating(images, factors)

    # -- long tasks ------------------------------------------------------------------------
    def cancel(self, event=None):
        """Stop the running long task at its next progress report."""
        self.task.cancel()

    def run_full(self, event=None):
        """Compute all images at full resolution in a worker, with progress and cancel."""
        layer, params = self.layer.value, self.valid_params()
        if layer is None:
            self.error(
                "Open a 4D STEM dataset first (File > Open, or File > Open Sample > "
                "napari-emcal) and choose it as the 4D dataset."
            )
            return
        if params is None:
            return
        generation, token = self.updates.generation, self.session.run_token()
        select, point, data = self.outputs.select, self.outputs.point, layer.data
        try:
            executor = check_executor(self.executor.value)
        except EmcalError as exc:
            self.error(str(exc))
            return
        source = pass_source(layer, executor)

        session = self.session

        def work(report):
            def progress(fraction):
                if not session.is_current(token):
                    raise Cancelled  # the dock shows other data now: the result would be dropped
                report(fraction)

            wait_for_kernels()
            images = compute(
                source, params, select=select, point=point, progress=progress, executor=executor
            )
            return images, params, data.shape[2:], (1, 1)

        def done(result):
            if self.updates.is_current(generation):  # else a newer change will draw
                return self._show(token, result, params, "full resolution")
            return None

        if not self.task.start("full-resolution pass", work, done):
            self.status.value = "another task is running: cancel it first"

    # -- the calibration section, for scripts and tests ------------------------------------
    def run_calibration(self, refine: bool = True) -> None:
        """Estimate (and with ``refine``, optimise) the twin; see :class:`CalibrationPanel`."""
        self.calibration.run(refine)

    @property
    def last_calibration(self):
        return self.session.last_calibration

    @property
    def last_images(self):
        return self.session.last_images


def _load_kernels():
    """In a worker: the kernels from numba's cache once the subprocess has put them there."""
    wait_for_kernels()
    return warm_up()
