"""What the test suite needs beyond the package: :mod:`.fetch` downloads the real instrument
files the tests read (``python -m napari_emcal.testing.fetch``)."""
