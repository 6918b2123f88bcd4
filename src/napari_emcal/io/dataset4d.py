"""The shared type of the 4D readers: :class:`Dataset4D`, its empty metadata and the Dask
chunking of frames; :class:`Dataset4D` is re-exported by :mod:`napari_emcal.io.readers`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import dask.array as da

from .instrument import InstrumentMetadata

__all__ = ["SCAN_CHUNK", "Dataset4D", "empty_metadata"]

#: Frames per Dask chunk along each scan axis when the file has no chunking of its own.
SCAN_CHUNK = 16


@dataclass
class Dataset4D:
    """A lazily opened 4D STEM dataset, what its file records and notes for the user."""

    data: da.Array
    metadata: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    instrument: InstrumentMetadata | None = None


def empty_metadata(path, fmt) -> dict[str, Any]:
    return {
        "source": os.fspath(path),
        "format": fmt,
        "scan_step": None,
        "detector_pixel_size": None,
        "camera_length": None,
        "beam_energy": None,
        "dwell_time": None,
        "scan_shape_guessed": False,
    }


def _frame_chunks(shape):
    return (min(SCAN_CHUNK, shape[0]), min(SCAN_CHUNK, shape[1]), shape[2], shape[3])
