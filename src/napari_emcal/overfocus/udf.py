"""LiberTEM UDF running the overfocus kernels on any LiberTEM executor.

The per-partition work is :func:`~napari_emcal.overfocus.kernels.splat_frames`, the same
kernel :func:`~napari_emcal.overfocus.compute` uses, so a pass on an inline, threaded or
dask.distributed LiberTEM ``Context`` gives the same images.
"""

from __future__ import annotations

import numpy as np
from libertem.udf.base import UDF

from .images import OUTPUTS, check_position, finish_images
from .kernels import make_plan, splat_frames
from .twin import TwinParams

__all__ = ["OverfocusUDF"]


class OverfocusUDF(UDF):
    """Compute the overfocus calibration images in one pass over a LiberTEM dataset.

    Parameters
    ----------
    twin : TwinParams
        The twin's parameters.
    select, point
        As for :func:`~napari_emcal.overfocus.compute`.

    Results
    -------
    ``point``, ``selected``, ``shifted_sum``, ``sum`` and ``aperture_sum``, as defined in
    :mod:`napari_emcal.overfocus.images`.
    """

    def __init__(self, twin: TwinParams, select=None, point=None, **kwargs):
        if not isinstance(twin, TwinParams):
            raise TypeError(f"twin must be a TwinParams, got {type(twin).__name__}.")
        super().__init__(twin=twin, select=select, point=point, **kwargs)

    # -- set-up --------------------------------------------------------------------
    def _shapes(self):
        return tuple(self.meta.dataset_shape.nav), tuple(self.meta.dataset_shape.sig)

    def _resolved(self):
        scan_shape, det_shape = self._shapes()
        twin = self.params.twin
        select = self.params.select
        select = (scan_shape[0] // 2, scan_shape[1] // 2) if select is None else select
        point = (twin.cy, twin.cx) if self.params.point is None else self.params.point
        return (check_position("select", select, scan_shape, "scan"),
                check_position("point", point, det_shape, "detector"))

    def get_preferred_input_dtype(self):
        return self.USE_NATIVE_DTYPE

    def get_result_buffers(self):
        scan_shape, det_shape = self._shapes()
        if len(scan_shape) != 2:
            raise ValueError(f"OverfocusUDF needs a 2D scan, got navigation shape {scan_shape}.")
        plan = make_plan(self.params.twin, scan_shape, det_shape)
        return {
            "shifted_acc": self.buffer(kind="single", extra_shape=(plan.padded_size,),
                                       dtype=np.float64, use="private"),
            "selected_frame": self.buffer(kind="sig", dtype=np.float64, use="private"),
            "point": self.buffer(kind="nav", dtype=np.float64),
            "aperture_sum": self.buffer(kind="sig", dtype=np.float64),
            **{name: self.buffer(kind="single", extra_shape=scan_shape, dtype=np.float64,
                                 use="result_only")
               for name in ("selected", "shifted_sum", "sum")},
        }

    def get_task_data(self):
        scan_shape, det_shape = self._shapes()
        select, point = self._resolved()
        return {"plan": make_plan(self.params.twin, scan_shape, det_shape),
                "select": select, "point": point}

    # -- per partition ---------------------------------------------------------------
    def process_partition(self, partition):
        task = self.task_data
        n = partition.shape[0]
        coords = self.meta.coordinates.reshape(n, -1)
        scan_y, scan_x = coords[:, 0], coords[:, 1]
        py, px = task.point
        self.results.point[:] = partition[:, py, px]
        hit = np.flatnonzero((scan_y == task.select[0]) & (scan_x == task.select[1]))
        if hit.size:
            self.results.selected_frame[:] = partition[hit[0]]
        frames = np.ascontiguousarray(partition.reshape(n, -1))
        if not frames.dtype.isnative:
            frames = frames.astype(frames.dtype.newbyteorder("="))
        splat_frames(frames, scan_y, scan_x, task.plan, self.results.shifted_acc[np.newaxis],
                     self.results.aperture_sum.reshape(1, -1))

    def merge(self, dest, src):
        dest.shifted_acc[:] += src.shifted_acc
        dest.aperture_sum[:] += src.aperture_sum
        dest.selected_frame[:] += src.selected_frame  # only one partition holds it
        dest.point[:] = src.point

    def get_results(self):
        scan_shape, det_shape = self._shapes()
        select, _ = self._resolved()
        plan = make_plan(self.params.twin, scan_shape, det_shape)
        images = finish_images(
            self.params.twin, OUTPUTS, scan_shape, select=select,
            point_image=np.asarray(self.results.point).reshape(scan_shape),
            selected_frame=np.asarray(self.results.selected_frame),
            shifted_sum=plan.crop(np.asarray(self.results.shifted_acc)).copy(),
            aperture_sum=np.asarray(self.results.aperture_sum),
        )
        return images
