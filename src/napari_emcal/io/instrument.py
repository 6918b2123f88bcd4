"""What a file says about the instrument, in SI units, with where each value came from.

Every calibration-relevant value a 2D image or a 4D dataset records is read into one
:class:`InstrumentMetadata`: its value in SI units and its source (``"file.emd:
Optics.LastMeasuredScreenCurrent"``, ``"typed by the user"``, ``"computed from ..."``). A
value the file does not hold is absent, never a default. The readers (RosettaSciIO, h5py,
mdocfile) parse the files; this module knows which of their keys mean what, in which unit.

The model (:data:`FIELDS`, :class:`Entry`, :class:`InstrumentMetadata`) is in
``instrument_model``, the vendors' key table and its use on original metadata and
RosettaSciIO signals in ``vendor_keys``, the format-specific headers (MRC, ``.mdoc``,
Merlin) in ``instrument_formats``; every name is importable from here.

Pure Python/NumPy: no Qt, no napari.
"""

from __future__ import annotations

from .instrument_formats import (
    fei_extended_header,
    from_mdoc,
    from_mrc,
    mdoc_beside,
    merlin_header,
)
from .instrument_model import FIELDS, Entry, InstrumentMetadata
from .vendor_keys import (
    RULES,
    axes_lengths,
    flatten,
    from_original_metadata,
    from_rsciio_signal,
    iso_time,
)

__all__ = [
    "FIELDS",
    "Entry",
    "InstrumentMetadata",
    "fei_extended_header",
    "flatten",
    "from_mdoc",
    "from_mrc",
    "mdoc_beside",
    "from_original_metadata",
    "from_rsciio_signal",
    "merlin_header",
    "RULES",
    "axes_lengths",
    "iso_time",
]
