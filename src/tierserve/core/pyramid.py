"""Reading stored pyramids: one tiled OME-TIFF per layer, level n in SubIFD n-1 (level 0 is page 0).

A `PyramidFile` is opened for one render and dropped with it. Opening a level costs about 0.4 ms
(`bench.pyramid`), while libvips images kept across requests accumulated native memory (worker RSS
grew by about 70 KB per request in `bench.soak`), so no libvips image is cached between requests.
Boxes of up to `SMALL_READ_PIXELS` are decoded tile by tile into memory instead (`core.tiles`,
whose parsed tile tables are kept per process): cheaper than a libvips pipeline for a few tiles.
Larger boxes stay lazy libvips crops, streamed strip by strip in bounded memory.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyvips

from tierserve.core.tiers import Box
from tierserve.core.tiles import tile_index
from tierserve.errors import StorageError

#: Largest box (level pixels) read through `core.tiles`: 4 Mpx, at most 24 MiB for 16-bit RGB.
SMALL_READ_PIXELS = 2048 * 2048
_INTERPRETATIONS = {("uchar", 1): "b-w", ("uchar", 3): "srgb", ("ushort", 1): "grey16", ("ushort", 3): "rgb16"}


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

    def read(self, n: int, box: Box) -> pyvips.Image:
        """`box` (level pixels, inside level `n`): decoded into memory when small, else a lazy crop."""
        if not is_small(box):
            return self.level(n).crop(box.x, box.y, box.width, box.height)
        image = pyvips.Image.new_from_array(np.ascontiguousarray(self.read_array(n, box)))
        return image.copy(interpretation=_INTERPRETATIONS.get((str(image.format), image.bands), "multiband"))

    def read_array(self, n: int, box: Box) -> npt.NDArray[Any]:
        """A small `box` of level `n` as an (height, width, bands) array, decoded tile by tile."""
        if not is_small(box):
            raise ValueError(f"{box.width}x{box.height} exceeds SMALL_READ_PIXELS={SMALL_READ_PIXELS}")
        return tile_index(self.path).read(n, box)


def is_small(box: Box) -> bool:
    """Whether `box` (level pixels) is read into memory rather than streamed by libvips."""
    return box.width * box.height <= SMALL_READ_PIXELS
