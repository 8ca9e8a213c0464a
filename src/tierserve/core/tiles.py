"""Reading small boxes of a stored level by decoding exactly the tiles that hold them.

For a few tiles, setting up a libvips pipeline over libtiff costs more than the decoding itself
(docs/performance.md). This path fetches the bytes of every touched tile in one `read_ranges` call
on the stored file (one round of ranged GETs on an object store), decodes them and pastes them into
a NumPy array (a box that is one whole tile: that tile's decoded array, possibly read-only). 8-bit
YCbCr and grey JPEG tiles are decoded by simplejpeg (libjpeg-turbo, the file's JPEG tables spliced
in front of each abbreviated tile) with the accurate inverse DCT, the pixels libvips decodes, or the
fast one (`JpegDct`); every other tile (deflate, as deeper data is stored) by tifffile through
imagecodecs. Both release the GIL while decoding. Boxes that libvips streams (`core.pyramid`) are
always decoded with the accurate DCT. A box that is exactly one whole 8-bit YCbCr JPEG tile may
instead be handed on as the tile's stream, undecoded (`stored_jpeg`, `core.stored_jpeg`).

A `TileReader` belongs to one worker process (the app state holds it and closes it). It keeps the
parsed tile tables of recently read files, keyed by key and version, and the header bytes read while
parsing them, so that libvips opening the same file from an object store reads its directories from
memory. It also owns the threads that decode the tile rows of a read alone in the process, while other
cores are idle.
"""

from __future__ import annotations

import bisect
import io
import logging
import os
import struct
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import simplejpeg
import tifffile

from tierserve.core.stored_jpeg import Tables, quantization_tables, read_header
from tierserve.core.tiers import Box
from tierserve.errors import StorageError
from tierserve.storage import ObjectInfo, StoredFile

log = logging.getLogger(__name__)

#: Files whose tile tables a worker keeps.
INDEX_CACHE_SIZE = 64
#: Bytes fetched at a time while parsing a TIFF's directories (tifffile reads tags in small pieces).
HEADER_BLOCK = 64 * 1024

#: libjpeg-turbo's inverse DCT for 8-bit JPEG tiles: "accurate" (JDCT_ISLOW, libvips' choice: the same
#: pixels) or "fast" (JDCT_IFAST, IIPImage's: 45 dB PSNR from accurate on the benchmark tiles, bench.dct).
JpegDct = Literal["accurate", "fast"]
#: Decodes the stored bytes of tile `index` (second argument) to its pixels.
TileDecoder = Callable[[bytes, int], npt.NDArray[Any]]
#: simplejpeg's output colour space for 8-bit JPEG tiles by (TIFF photometric, samples per pixel).
_SIMPLEJPEG_COLORSPACES = {(tifffile.PHOTOMETRIC.YCBCR, 3): "rgb", (tifffile.PHOTOMETRIC.MINISBLACK, 1): "gray"}


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
    decode: TileDecoder
    #: 8-bit YCbCr JPEG tiles, whose streams may be answers (`core.stored_jpeg`).
    ycbcr_jpeg: bool
    #: Of 8-bit JPEG tiles: the file's JPEGTables without their EOI, put in front of each tile's stream
    #: without its SOI (b"": every tile is a whole JPEG stream).
    jpeg_prefix: bytes

    @property
    def columns(self) -> int:
        return -(-self.width // self.tile_width)

    def whole_tile(self, box: Box) -> int | None:
        """The index of the tile that is exactly `box` (level pixels), or None when `box` is not one whole
        tile (edge tiles cut by the level's edge never are)."""
        tw, th = self.tile_width, self.tile_height
        if (box.width, box.height) != (tw, th) or box.x % tw or box.y % th:
            return None
        return box.y // th * self.columns + box.x // tw

    def jpeg_stream(self, data: bytes) -> bytes:
        """The whole JPEG stream of an 8-bit JPEG tile stored as `data`."""
        return _spliced(self.jpeg_prefix, data)


class BlockReader(io.RawIOBase):
    """A seekable, read-only stream over a stored file that fetches aligned blocks and keeps them.

    `blocks` may be shared (the header blocks of a parsed file); at most `max_blocks` new blocks are
    kept, least recently used first out, so memory stays bounded however much is streamed.
    """

    def __init__(
        self, file: StoredFile, block: int, blocks: dict[int, bytes] | None = None, max_blocks: int = 1 << 30
    ) -> None:
        super().__init__()
        self._file = file
        self._size = file.info.size
        self._block = block
        self._shared = sorted((blocks or {}).items())
        self._shared_starts = [start for start, _ in self._shared]
        self._own: OrderedDict[int, bytes] = OrderedDict()
        self._max_blocks = max_blocks
        self._position = 0

    @property
    def fetched(self) -> dict[int, bytes]:
        """The blocks this reader fetched itself, by offset."""
        return dict(self._own)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        wanted = min(len(view), max(0, self._size - self._position))
        done = 0
        while done < wanted:
            start, data = self._chunk_at(self._position)
            inner = self._position - start
            count = min(wanted - done, len(data) - inner)
            if count <= 0:
                raise StorageError("stored pyramid is truncated")
            view[done : done + count] = data[inner : inner + count]
            done += count
            self._position += count
        return done

    def _chunk_at(self, position: int) -> tuple[int, bytes]:
        """A held or fetched chunk of the file that contains `position`, with its offset."""
        i = bisect.bisect_right(self._shared_starts, position) - 1
        if i >= 0 and position < self._shared[i][0] + len(self._shared[i][1]):
            return self._shared[i]
        start = position // self._block * self._block
        return start, self._block_at(start)

    def _block_at(self, start: int) -> bytes:
        data = self._own.get(start)
        if data is not None:
            self._own.move_to_end(start)
            return data
        [data] = self._file.read_ranges([(start, min(self._block, self._size - start))])
        self._own[start] = data
        while len(self._own) > self._max_blocks:
            self._own.popitem(last=False)
        return data


class TileIndex:
    """The tile tables of every level of one pyramid file, their decoders (8-bit JPEG with `jpeg_dct`),
    and the header blocks read to parse them."""

    def __init__(self, file: StoredFile, jpeg_dct: JpegDct = "accurate") -> None:
        self.file = file
        reader = BlockReader(file, HEADER_BLOCK)
        try:
            with tifffile.TiffFile(io.BufferedReader(reader)) as tif:
                self.levels = tuple(_level_tiles(level.pages[0], jpeg_dct) for level in tif.series[0].levels)
        except StorageError:
            raise
        except (OSError, ValueError, IndexError, struct.error, tifffile.TiffFileError) as exc:
            raise StorageError("stored pyramid cannot be opened") from exc
        self.header_blocks = reader.fetched
        self._level_tables: dict[int, Tables | None] = {}

    def level_tables(self, level: int) -> Tables | None:
        """The quantization tables of `level`'s 8-bit YCbCr JPEG tiles (its JPEGTables', else its first
        tile's, read once), or None for other tiles, malformed markers or a first tile that cannot be
        read (logged; each request then renders from its own tiles)."""
        if level not in self._level_tables:
            self._level_tables[level] = self._read_level_tables(level) if self.levels[level].ycbcr_jpeg else None
        return self._level_tables[level]

    def _read_level_tables(self, level: int) -> Tables | None:
        header = read_header(self.levels[level].jpeg_prefix)
        if header is None or not header.tables:
            try:
                header = read_header(self.levels[level].jpeg_stream(self.tile_bytes(level, [0])[0]))
            except StorageError as exc:
                log.warning("%s, level %d: no stored tile answers: %s", self.file.info.key, level, exc.message)
                return None
        return None if header is None else header.tables

    def tile_bytes(self, level: int, indices: list[int]) -> list[bytes]:
        """The stored bytes of tiles `indices` of `level`, in one `read_ranges` call."""
        tiles = self.levels[level]
        return self.file.read_ranges([(int(tiles.offsets[i]), int(tiles.byte_counts[i])) for i in indices])


class TileReader:
    """Reads small boxes of stored levels; keeps tile tables of `cache_size` files; owns decode threads.

    `decode_threads` threads decode the tile rows of a read that is alone in the process while
    `spare_cores()` says other cores are idle (1: decode on the reading thread only). Parallel rows
    cut a lone read's latency and cost CPU in hand-offs (docs/operations.md); under concurrent reads,
    or with no spare core, each read decodes its own tiles. `jpeg_dct` is the inverse DCT of 8-bit
    JPEG tiles; `passthrough` lets `stored_jpeg` answer with stored tiles.
    """

    def __init__(
        self,
        decode_threads: int = os.cpu_count() or 1,
        cache_size: int = INDEX_CACHE_SIZE,
        jpeg_dct: JpegDct = "accurate",
        spare_cores: Callable[[], bool] = lambda: True,
        passthrough: bool = True,
    ) -> None:
        if decode_threads < 1:
            raise ValueError(f"decode threads must be at least 1, not {decode_threads}")
        self._threads = decode_threads
        self._spare_cores = spare_cores
        self._dct: JpegDct = jpeg_dct
        self._passthrough = passthrough
        self._pool = ThreadPoolExecutor(decode_threads, thread_name_prefix="tiles") if decode_threads > 1 else None
        self._cache_size = cache_size
        self._indexes: OrderedDict[ObjectInfo, TileIndex] = OrderedDict()
        self._lock = threading.Lock()
        self._reads = 0

    @property
    def decode_threads(self) -> int:
        return self._threads

    @property
    def jpeg_dct(self) -> JpegDct:
        return self._dct

    @property
    def passthrough(self) -> bool:
        """Whether `stored_jpeg` may answer with stored tiles (TIERSERVE_TILE_PASSTHROUGH)."""
        return self._passthrough

    def index(self, file: StoredFile) -> TileIndex:
        """The tile tables of `file`, parsed on first use and kept per key and version."""
        info = file.info
        with self._lock:
            index = self._indexes.get(info)
            if index is not None:
                self._indexes.move_to_end(info)
                return index
        index = TileIndex(file, self._dct)
        with self._lock:
            self._indexes[info] = index
            while len(self._indexes) > self._cache_size:
                self._indexes.popitem(last=False)
        return index

    def read(self, file: StoredFile, level: int, box: Box) -> npt.NDArray[Any]:
        """The pixels of `box` (level pixels, inside the level) as a C-contiguous (height, width, bands) array;
        a box that is one whole tile is that tile's decoded array itself (no copy into a canvas; read-only
        from some decoders)."""
        index = self.index(file)
        tiles = index.levels[level]
        if (tile := tiles.whole_tile(box)) is not None:
            [data] = index.tile_bytes(level, [tile])
            with self._counted():
                return np.ascontiguousarray(_decode(tiles, tile, data))
        tw, th = tiles.tile_width, tiles.tile_height
        first_col, first_row = box.x // tw, box.y // th
        last_col, last_row = (box.x + box.width - 1) // tw, (box.y + box.height - 1) // th
        columns = range(first_col, last_col + 1)
        rows = range(first_row, last_row + 1)
        indices = [row * tiles.columns + col for row in rows for col in columns]
        stored = dict(zip(indices, index.tile_bytes(level, indices), strict=True))
        canvas = np.empty((box.height, box.width, tiles.bands), tiles.dtype)  # contiguous: no copy to encode

        def decode_row(row: int) -> None:
            top, bottom = max(box.y, row * th), min(box.y + box.height, (row + 1) * th)
            for col in columns:
                left, right = max(box.x, col * tw), min(box.x + box.width, (col + 1) * tw)
                cell = row * tiles.columns + col
                tile = _decode(tiles, cell, stored[cell])
                canvas[top - box.y : bottom - box.y, left - box.x : right - box.x] = tile[
                    top - row * th : bottom - row * th, left - col * tw : right - col * tw
                ]

        with self._counted() as alone:
            if alone and len(rows) > 1 and self._pool is not None and self._spare_cores():
                list(self._pool.map(decode_row, rows))
            else:
                for row in rows:
                    decode_row(row)
        return canvas

    def stored_jpeg(self, file: StoredFile, level: int, box: Box, quality: int) -> bytes | None:
        """The stored JPEG stream of the tile that is exactly `box` (level pixels), when its tiles are 8-bit
        YCbCr JPEG quantized as at `quality` (1-100; `core.stored_jpeg`) and `passthrough` is on, else
        None. The tile's bytes are read only when the level's tables match."""
        if not self._passthrough:
            return None
        index = self.index(file)
        tiles = index.levels[level]
        tile = tiles.whole_tile(box)
        if tile is None or index.level_tables(level) != quantization_tables(quality):
            return None
        [data] = index.tile_bytes(level, [tile])
        stream = tiles.jpeg_stream(data)
        header = read_header(stream)
        return stream if header is not None and header.answers(tiles.tile_width, tiles.tile_height, quality) else None

    def header_blocks(self, file: StoredFile) -> dict[int, bytes]:
        """The header blocks of `file` read while parsing its tile tables (parses it if needed)."""
        return self.index(file).header_blocks

    @contextmanager
    def _counted(self) -> Iterator[bool]:
        """Count this read for its duration; yields whether it is the only one in the process."""
        with self._lock:
            self._reads += 1
            alone = self._reads == 1
        try:
            yield alone
        finally:
            with self._lock:
                self._reads -= 1

    def close(self) -> None:
        """Stop the decode threads and forget every tile table."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        with self._lock:
            self._indexes.clear()


def _decode(tiles: LevelTiles, index: int, data: bytes) -> npt.NDArray[Any]:
    """Tile `index` of `tiles`, stored as `data`, as a (tile height, tile width, bands) array."""
    try:
        return tiles.decode(data, index).reshape(tiles.tile_height, tiles.tile_width, tiles.bands)
    except Exception as exc:  # simplejpeg raises ValueError, imagecodecs its own error classes per codec
        raise StorageError("stored pyramid could not be decoded") from exc


def _tile_decoder(page: Any, jpeg_dct: JpegDct, jpeg: bool, prefix: bytes) -> TileDecoder:
    """simplejpeg for 8-bit contiguous YCbCr or grey JPEG tiles (`jpeg`, whose streams follow `prefix`),
    tifffile's decoder of the page for the rest."""
    colorspace = _SIMPLEJPEG_COLORSPACES.get((page.photometric, page.samplesperpixel))
    if not jpeg or colorspace is None:

        def decode_page(data: bytes, index: int) -> npt.NDArray[Any]:
            pixels, _, _ = page.decode(data, index, jpegtables=page.jpegtables)
            return np.asarray(pixels)

        return decode_page
    fastdct = jpeg_dct == "fast"

    def decode_jpeg(data: bytes, _index: int) -> npt.NDArray[Any]:
        # not strict: damaged entropy data decodes to imagecodecs' pixels, only fatal errors raise
        return np.asarray(simplejpeg.decode_jpeg(_spliced(prefix, data), colorspace, fastdct=fastdct, strict=False))

    return decode_jpeg


def _simplejpeg_tiles(page: Any) -> bool:
    """Whether `page`'s tiles are contiguous 8-bit JPEG streams."""
    return bool(
        page.compression == tifffile.COMPRESSION.JPEG
        and page.bitspersample == 8
        and page.planarconfig == tifffile.PLANARCONFIG.CONTIG
    )


def _jpeg_prefix(page: Any) -> bytes:
    """The page's JPEGTables without their EOI (SOI and tables), or b"" when it has none."""
    return bytes(page.jpegtables[:-2]) if page.jpegtables else b""


def _spliced(prefix: bytes, data: bytes) -> bytes:
    """A tile's whole JPEG stream: `prefix` (`_jpeg_prefix`), then the tile's `data` without its SOI."""
    return prefix + data[2:] if prefix else data


def _level_tiles(page: Any, jpeg_dct: JpegDct) -> LevelTiles:
    if not page.is_tiled:
        raise ValueError("level is not tiled")
    jpeg = _simplejpeg_tiles(page)
    prefix = _jpeg_prefix(page) if jpeg else b""
    ycbcr = (page.photometric, page.samplesperpixel) == (tifffile.PHOTOMETRIC.YCBCR, 3)
    return LevelTiles(
        width=page.imagewidth,
        height=page.imagelength,
        tile_width=page.tilewidth,
        tile_height=page.tilelength,
        bands=page.samplesperpixel,
        dtype=page.dtype,
        offsets=np.asarray(page.dataoffsets, dtype=np.int64),
        byte_counts=np.asarray(page.databytecounts, dtype=np.int64),
        decode=_tile_decoder(page, jpeg_dct, jpeg, prefix),
        ycbcr_jpeg=jpeg and ycbcr,
        jpeg_prefix=prefix,
    )
