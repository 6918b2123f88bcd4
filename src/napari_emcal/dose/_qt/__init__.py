"""Qt dock widget of the dose table (napari glue)."""
