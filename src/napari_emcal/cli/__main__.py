"""``python -m napari_emcal.cli``: the ``emcal`` command."""

import sys

from . import main

sys.exit(main())
