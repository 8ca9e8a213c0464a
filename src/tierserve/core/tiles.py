"""Reading small boxes of a stored level by decoding exactly the tiles that hold them.

For a few tiles, setting up a libvips pipeline over libtiff costs more than the decoding itself
(a 256 x 256 tile: about 1.4 ms of CPU through libvips against 0.3 ms decoding and encoding it
directly; `python -m bench.compare`). This path reads each touched tile's bytes with one `pread`,
decodes it with imagecodecs (libjpeg-turbo, zlib: the libraries libvips uses) and pastes it into a
NumPy array. The tile directory of a file is parsed once per process and kept (`tile_index`), keyed
by the file's identity, so a replaced file is parsed again.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import tifffile

from tierserve.core.tiers import Box
from tierserve.errors import StorageError

#: Files whose tile directories a worker keeps (each holds one open descriptor and the tile tables).
INDEX_CACHE_SIZE = 64

Decoder = Callable[..., tuple[Any, Any, Any]]


@dataclass(frozen=True, slots=True)
class LevelTiles:
    """Where the tiles of one stored level lie in the file, and how to decode them."""

    width: int
    height: int
    tile_width: int
    tile_height: int
    bands: int
    dtype: np.dtype[Any]
    offsets: npt.NDArray[np.int64]
    byte_counts: npt.NDArray[np.int64]
    jpeg_tables: bytes | None
    decode: Decoder

    @property
    def columns(self) -> int:
        return -(-self.width // self.tile_width)


class TileIndex:
    """The tile tables of every level of one pyramid file, with an open descriptor to read tiles."""

    def __init__(self, path: str) -> None:
        try:
            with tifffile.TiffFile(path) as tif:
                self.levels = tuple(_level_tiles(level.pages[0]) for level in tif.series[0].levels)
            self._fd = os.open(path, os.O_RDONLY)
        except (OSError, ValueError, IndexError, tifffile.TiffFileError) as exc:
            raise StorageError("stored pyramid cannot be opened") from exc

    def read(self, level: int, box: Box) -> npt.NDArray[Any]:
        """The pixels of `box` (level pixels, inside the level) as an (height, width, bands) array.

        Rows of tiles are decoded on several threads while this is the only read in the process
        (imagecodecs releases the GIL), so that one request alone uses every core; under
        concurrent reads each decodes its own tiles, which costs the least CPU.
        """
        tiles = self.levels[level]
        tw, th = tiles.tile_width, tiles.tile_height
        first_col, first_row = box.x // tw, box.y // th
        last_col, last_row = (box.x + box.width - 1) // tw, (box.y + box.height - 1) // th
        shape = ((last_row - first_row + 1) * th, (last_col - first_col + 1) * tw, tiles.bands)
        canvas = np.empty(shape, tiles.dtype)

        def decode_row(row: int) -> None:
            y = (row - first_row) * th
            for col in range(first_col, last_col + 1):
                x = (col - first_col) * tw
                canvas[y : y + th, x : x + tw] = self._tile(tiles, row * tiles.columns + col)

        rows = range(first_row, last_row + 1)
        with _reads.enter() as alone:
            if alone and len(rows) > 1 and _decode_threads > 1:
                list(_pool(_decode_threads).map(decode_row, rows))
            else:
                for row in rows:
                    decode_row(row)
        top, left = box.y - first_row * th, box.x - first_col * tw
        return canvas[top : top + box.height, left : left + box.width]

    def _tile(self, tiles: LevelTiles, index: int) -> npt.NDArray[Any]:
        size = int(tiles.byte_counts[index])
        data = os.pread(self._fd, size, int(tiles.offsets[index]))
        if len(data) != size:
            raise StorageError("stored pyramid is truncated")
        try:
            pixels, _, _ = tiles.decode(data, index, jpegtables=tiles.jpeg_tables)
        except Exception as exc:  # imagecodecs raises its own error classes per codec
            raise StorageError("stored pyramid could not be decoded") from exc
        return np.asarray(pixels).reshape(tiles.tile_height, tiles.tile_width, tiles.bands)

    def __del__(self) -> None:
        fd = getattr(self, "_fd", None)
        if fd is not None:
            os.close(fd)


def _level_tiles(page: Any) -> LevelTiles:
    if not page.is_tiled:
        raise ValueError("level is not tiled")
    return LevelTiles(
        width=page.imagewidth,
        height=page.imagelength,
        tile_width=page.tilewidth,
        tile_height=page.tilelength,
        bands=page.samplesperpixel,
        dtype=page.dtype,
        offsets=np.asarray(page.dataoffsets, dtype=np.int64),
        byte_counts=np.asarray(page.databytecounts, dtype=np.int64),
        jpeg_tables=page.jpegtables,
        decode=page.decode,
    )


class _ReadCounter:
    """How many tile reads are under way in this process."""

    def __init__(self) -> None:
        self._count = 0
        self._lock = threading.Lock()

    @contextmanager
    def enter(self) -> Iterator[bool]:
        """Count this read for its duration; yields whether it is the only one."""
        with self._lock:
            self._count += 1
            alone = self._count == 1
        try:
            yield alone
        finally:
            with self._lock:
                self._count -= 1


_reads = _ReadCounter()
_decode_threads = os.cpu_count() or 1


def set_decode_threads(threads: int) -> None:
    """Threads that decode the tile rows of a read alone in the process; 1 decodes on the reading
    thread only. Default: every core. Parallel rows cut the latency of a lone read and cost some CPU
    in thread hand-offs (`python -m bench.ab --b TIERSERVE_DECODE_THREADS=1`, 2 workers on 2 cores:
    1000 x 1000 Q75 regions at 1 connection 142 vs 108 req/s, at 4 connections 180 vs 172; numbers
    in docs/operations.md). Set 1 on a machine kept saturated."""
    global _decode_threads
    if threads < 1:
        raise ValueError(f"decode threads must be at least 1, not {threads}")
    _decode_threads = threads


@cache
def _pool(threads: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(threads, thread_name_prefix="tiles")


_indexes: OrderedDict[tuple[str, int, int, int], TileIndex] = OrderedDict()
_lock = threading.Lock()


def tile_index(path: str) -> TileIndex:
    """The (shared, cached) tile index of `path`; raises `StorageError` if it is missing or unreadable."""
    try:
        stat = Path(path).stat()
    except OSError as exc:
        raise StorageError("stored pyramid is missing") from exc
    key = (path, stat.st_ino, stat.st_mtime_ns, stat.st_size)
    with _lock:
        index = _indexes.get(key)
        if index is not None:
            _indexes.move_to_end(key)
            return index
    index = TileIndex(path)
    with _lock:
        _indexes[key] = index
        while len(_indexes) > INDEX_CACHE_SIZE:
            _indexes.popitem(last=False)
    return index
