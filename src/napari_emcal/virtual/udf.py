"""LiberTEM UDF running the dataset pass (:mod:`napari_emcal.virtual.analysis`) on any
LiberTEM executor: the per-partition work is the same :func:`frame_sums` kernel."""

from __future__ import annotations

import numpy as np
from libertem.udf.base import UDF

from ..overfocus.twin import rotation_flip_matrix
from .analysis import check_masks, finish_pass, frame_sums, pass_weights

__all__ = ["DatasetPassUDF"]


class DatasetPassUDF(UDF):
    """Aperture sums, counts, centre of mass, disk centres and saturation per frame.

    Parameters as for :class:`~napari_emcal.virtual.analysis.DatasetPass`; the results
    (``sums``, ``saturated``, ``aperture_sum``) become a ``PassResult`` with
    :meth:`pass_result`.
    """

    def __init__(self, masks=None, beam=None, max_count=None, scan_rotation=0.0, flip_y=False,
                 **kwargs):
        super().__init__(masks=dict(masks or {}), beam=beam, max_count=max_count,
                         scan_rotation=scan_rotation, flip_y=flip_y, **kwargs)

    def get_preferred_input_dtype(self):
        return self.USE_NATIVE_DTYPE

    def get_result_buffers(self):
        columns = len(self.params.masks) + 3 + (5 if self.params.beam is not None else 0)
        return {"sums": self.buffer(kind="nav", extra_shape=(columns,), dtype=np.float64),
                "saturated": self.buffer(kind="nav", dtype=np.float64),
                "aperture_sum": self.buffer(kind="sig", dtype=np.float64)}

    def get_task_data(self):
        detector = tuple(self.meta.dataset_shape.sig)
        masks = check_masks(self.params.masks, detector)
        return {"weights": pass_weights(detector, masks, self.params.beam)}

    def process_partition(self, partition):
        frames = np.asarray(partition)
        if not frames.dtype.isnative:
            frames = frames.astype(frames.dtype.newbyteorder("="))
        self.results.sums[:] = frame_sums(frames, self.task_data.weights)
        if self.params.max_count is not None:
            self.results.saturated[:] = (frames >= self.params.max_count).sum(axis=(1, 2))
        self.results.aperture_sum[:] += frames.sum(axis=0, dtype=np.float64)

    def merge(self, dest, src):
        dest.sums[:] = src.sums
        dest.saturated[:] = src.saturated
        dest.aperture_sum[:] += src.aperture_sum

    def pass_result(self, results):
        """The :class:`~napari_emcal.virtual.analysis.PassResult` of a run's results."""
        p = self.params
        saturated = np.asarray(results["saturated"]) if p.max_count is not None else None
        return finish_pass(np.asarray(results["sums"]), saturated,
                           np.asarray(results["aperture_sum"]), list(p.masks), beam=p.beam,
                           max_count=p.max_count,
                           rotation=rotation_flip_matrix(p.scan_rotation, p.flip_y))
