"""Reading stored pyramids: one tiled OME-TIFF per layer, level n in SubIFD n-1 (level 0 is page 0).

A `PyramidFile` is opened for one render and dropped with it. Opening a level costs about 0.4 ms
(`bench.pyramid`), while libvips images kept across requests accumulated native memory (worker RSS
grew by about 70 KB per request in `bench.soak`), so no libvips image is kept between requests.
Boxes of up to `SMALL_READ_PIXELS` are decoded tile by tile into memory instead (`core.tiles`,
whose parsed tile tables are kept per process): cheaper than a libvips pipeline for a few tiles.
Larger boxes stay lazy libvips crops, streamed strip by strip in bounded memory: libvips opens a
local file by its path, and a remote one through a `pyvips.SourceCustom` over ranged reads whose
directories come from the header blocks `core.tiles` already holds.
"""

from __future__ import annotations

from typing import Any

import numpy.typing as npt
import pyvips

from tierserve.core.tiers import Box
from tierserve.core.tiles import BlockReader, TileReader
from tierserve.errors import StorageError
from tierserve.storage import StoredFile

#: Largest box (level pixels) read through `core.tiles`: 4 Mpx, at most 24 MiB for 16-bit RGB.
SMALL_READ_PIXELS = 2048 * 2048
#: Bytes fetched at a time when libvips streams a remote file, and how many such blocks one level keeps.
STREAM_BLOCK = 1024 * 1024
STREAM_BLOCKS = 16
_INTERPRETATIONS = {("uchar", 1): "b-w", ("uchar", 3): "srgb", ("ushort", 1): "grey16", ("ushort", 3): "rgb16"}


class PyramidFile:
    """A stored pyramidal TIFF, read for one render."""

    def __init__(self, file: StoredFile, tiles: TileReader) -> None:
        self.file = file
        self._tiles = tiles
        self._sources: list[pyvips.SourceCustom] = []  # kept alive while libvips may call them

    def level(self, n: int) -> pyvips.Image:
        """Level `n` (0 = full resolution) as a random-access libvips image."""
        options: dict[str, Any] = {"access": "random", "fail_on": "warning"}
        if n > 0:
            options["subifd"] = n - 1
        try:
            path = self.file.local_path
            if path is not None:
                return pyvips.Image.tiffload(path, **options)
            return pyvips.Image.tiffload_source(self._source(), **options)
        except pyvips.Error as exc:
            raise StorageError(f"stored pyramid level {n} cannot be opened") from exc

    def _source(self) -> pyvips.SourceCustom:
        reader = BlockReader(self.file, STREAM_BLOCK, self._tiles.header_blocks(self.file), STREAM_BLOCKS)
        source = pyvips.SourceCustom()
        source.on_read(reader.read)
        source.on_seek(reader.seek)
        self._sources.append(source)
        return source

    def read(self, n: int, box: Box) -> pyvips.Image:
        """`box` (level pixels, inside level `n`): decoded into memory when small, else a lazy crop."""
        if not is_small(box):
            return self.level(n).crop(box.x, box.y, box.width, box.height)
        image = pyvips.Image.new_from_array(self.read_array(n, box))
        return image.copy(interpretation=_INTERPRETATIONS.get((str(image.format), image.bands), "multiband"))

    def read_array(self, n: int, box: Box) -> npt.NDArray[Any]:
        """A small `box` of level `n` as a C-contiguous (height, width, bands) array, decoded tile by tile
        (a box that is one whole tile: that tile's decoded array, possibly read-only)."""
        if not is_small(box):
            raise ValueError(f"{box.width}x{box.height} exceeds SMALL_READ_PIXELS={SMALL_READ_PIXELS}")
        return self._tiles.read(self.file, n, box)


def is_small(box: Box) -> bool:
    """Whether `box` (level pixels) is read into memory rather than streamed by libvips."""
    return box.width * box.height <= SMALL_READ_PIXELS
