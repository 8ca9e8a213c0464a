"""Reading stored pyramids: one tiled OME-TIFF per layer, level n in SubIFD n-1 (level 0 is page 0).

A `PyramidFile` is opened for one render and dropped with it. Opening a level costs about 0.4 ms
(`bench.pyramid`), while libvips images kept across requests accumulated native memory (worker RSS
grew by about 70 KB per request in `bench.soak`), so nothing is cached between requests.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pyvips

from tierserve.errors import StorageError


class PyramidFile:
    """A pyramidal TIFF whose levels open on first use."""

    def __init__(self, path: str) -> None:
        if not Path(path).is_file():
            raise StorageError("stored pyramid is missing")
        self.path = path
        self._levels: dict[int, pyvips.Image] = {}
        self._lock = threading.Lock()

    def level(self, n: int) -> pyvips.Image:
        """Level `n` (0 = full resolution) as a random-access libvips image."""
        with self._lock:
            image = self._levels.get(n)
            if image is None:
                try:
                    image = pyvips.Image.tiffload(self.path, subifd=n - 1, access="random", fail_on="warning")
                except pyvips.Error as exc:
                    raise StorageError(f"stored pyramid level {n} cannot be opened") from exc
                self._levels[n] = image
            return image
