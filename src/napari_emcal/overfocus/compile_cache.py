"""Fill numba's cache with the overfocus kernels, in a process of its own.

``python -m napari_emcal.overfocus.compile_cache`` compiles (or finds in numba's cache)
the pass for each common dtype and prints one line per dtype done. napari's dock runs it
as a subprocess on first use: compiling holds a process's GIL for seconds, which in
napari's process would freeze the window; afterwards the dock's workers load the kernels
from the cache.
"""

from __future__ import annotations

import sys

from .images import COMMON_DTYPES, warm_up

__all__ = ["DESCRIPTION", "MODULE", "STEPS", "main"]

#: This module, as ``python -m`` runs it.
MODULE = __name__ if __name__ != "__main__" else "napari_emcal.overfocus.compile_cache"
#: What napari's activity dock says while it runs.
DESCRIPTION = "compiling the overfocus kernels (once per machine)"
#: Lines ``done …`` it prints.
STEPS = len(COMMON_DTYPES)


def main(dtypes=COMMON_DTYPES) -> int:
    """Compile the pass for ``dtypes``, printing ``done <dtype>`` after each; 0."""
    for dtype in dtypes:
        warm_up((dtype,))
        print(f"done {dtype}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
