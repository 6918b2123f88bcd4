"""Qt dock widget of the grating tool (napari glue)."""
