"""Qt/napari helpers shared by the tools' dock widgets (nothing in the core imports this)."""
