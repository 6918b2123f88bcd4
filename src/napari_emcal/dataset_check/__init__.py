"""Virtual apertures and 4D dataset checks: aperture images, centre of mass, beam centre,
descan, saturation and a verdict per analysis.

Pure computation; the dock widget lives in ``_qt``.
"""

from .analysis import (
    BeamDisk,
    DatasetPass,
    Descan,
    PassResult,
    analyse,
    estimate_beam,
    find_beam,
    fit_beam_walk,
    fit_descan,
    follow_beam,
    frame_sums,
)
from .follow import check_pass
from .masks import annulus, disk, ellipse, mask_from_shape, polygon
from .report import ANALYSES, DatasetReport, dataset_report, saturation_count
from .simulate import diffraction_dataset

__all__ = [
    "ANALYSES",
    "BeamDisk",
    "DatasetPass",
    "DatasetReport",
    "Descan",
    "PassResult",
    "analyse",
    "annulus",
    "check_pass",
    "dataset_report",
    "diffraction_dataset",
    "disk",
    "ellipse",
    "estimate_beam",
    "find_beam",
    "fit_beam_walk",
    "fit_descan",
    "follow_beam",
    "frame_sums",
    "mask_from_shape",
    "polygon",
    "saturation_count",
]
