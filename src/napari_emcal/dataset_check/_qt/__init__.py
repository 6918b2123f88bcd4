"""Qt dock widget of the 4D dataset check (napari glue)."""
