"""Qt dock widget of the high-defocus tool (napari glue)."""
