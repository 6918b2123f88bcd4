"""Docks that hand one tool's result to another tool's dock: the glue may know both, a
tool may not (``tests/test_structure.py``)."""

from __future__ import annotations

from ..serialem._qt.widget import SerialEMWidget

__all__ = ["SerialEMDock", "add_image_shift_row"]


def add_image_shift_row(viewer, row: dict) -> str:
    """Add a high-defocus image-shift ``row`` (``HighDefocusIS.table_row``) to the table of
    the *High-defocus mag* dock (opened if closed), beside its magnification calibrations;
    the sentence to show.

    Raises
    ------
    InvalidParameterError
        A value the table refuses.
    """
    from ..highdefocus.table import IMAGE_SHIFT

    _, dock = viewer.window.add_plugin_dock_widget("napari-emcal", "High-defocus mag")
    added = dock.table.add(**row, calibration=IMAGE_SHIFT)
    dock.refresh_table()
    return (
        f"high-defocus table: image-shift calibration at {row['defocus_um']:g} µm {added.message}"
    )


class SerialEMDock(SerialEMWidget):
    """The *SerialEM calibrations* dock, whose high-defocus image shift goes into the
    *High-defocus mag* dock's table (*Add to high-defocus table*)."""

    def __init__(self, napari_viewer):
        super().__init__(napari_viewer)
        self.to_high_defocus_table = lambda row: add_image_shift_row(self.viewer, row)
        self._calibration_changed()  # shows the button
