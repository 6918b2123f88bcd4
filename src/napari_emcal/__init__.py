"""napari-emcal: calibrate an electron microscope from the data it records."""

__version__ = "0.1.0"
