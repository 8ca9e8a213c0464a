"""Stored JPEG tiles as answers: whether a tile's own stream is what a JPEG request at a quality asks for.

A request for exactly one whole stored tile, with nothing done to its pixels, at the quality the tile
was stored at, is answered with the tile's JPEG stream as it is (`TileReader.stored_jpeg`): no decode,
no encode. It decodes to exactly the pixels a render would start from, so it is at least as faithful
as any re-encode of them; its chroma is the stored one (4:2:0 as ingest writes it, whatever
`TIERSERVE_JPEG_CHROMA` says: subsampled chroma cannot be restored by re-encoding it).

"The quality the tile was stored at" is decided by the quantization tables: the tile's (in its own
stream, or in the TIFF's JPEGTables) must equal those libjpeg-turbo writes at the requested quality
(`quantization_tables`, from an encode by the same library that encodes answers). Only baseline
(SOF0) streams of the tile's size qualify.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import imagecodecs
import numpy as np

_SOI, _SOS, _EOI, _DQT, _SOF0 = 0xD8, 0xDA, 0xD9, 0xDB, 0xC0
#: Markers without a length field (RSTn, SOI, EOI, TEM).
_STANDALONE = {*range(0xD0, 0xD8), _SOI, _EOI, 0x01}
#: Start-of-frame markers (every SOFn but DHT C4, JPG C8 and DAC CC).
_FRAMES = {*range(0xC0, 0xD0)} - {0xC4, 0xC8, 0xCC}
#: Quantization tables by id (0-3): 64 entries, 8-bit precision bytes or 16-bit big-endian pairs.
Tables = dict[int, bytes]


@dataclass(frozen=True, slots=True)
class JpegHeader:
    """What a JPEG stream's markers up to its first scan say: the quantization tables it defines, and
    its frame (marker, width, height in pixels; None without a frame)."""

    tables: Tables
    frame: tuple[int, int, int] | None

    def answers(self, width: int, height: int, quality: int) -> bool:
        """Whether this stream is a baseline `width` x `height` JPEG quantized as at `quality` (1-100)."""
        return self.frame == (_SOF0, width, height) and self.tables == quantization_tables(quality)


def read_header(stream: bytes) -> JpegHeader | None:
    """The header of `stream` (a whole JPEG, or a TIFF's JPEGTables), or None when its markers are malformed
    (no SOI, a truncated segment, a table of an unknown precision)."""
    if stream[:2] != b"\xff\xd8":
        return None
    tables: Tables = {}
    frame = None
    position = 2
    while position + 4 <= len(stream):
        if stream[position] != 0xFF:
            return None
        marker = stream[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker in _STANDALONE:
            if marker == _EOI:
                break
            position += 2
            continue
        end = position + 2 + int.from_bytes(stream[position + 2 : position + 4], "big")
        if end > len(stream):
            return None
        segment = stream[position + 4 : end]
        if marker == _DQT and not _add_tables(segment, tables):
            return None
        if marker in _FRAMES and len(segment) >= 5:
            frame = (marker, int.from_bytes(segment[3:5], "big"), int.from_bytes(segment[1:3], "big"))
        if marker == _SOS:
            break
        position = end
    return JpegHeader(tables, frame)


def _add_tables(segment: bytes, tables: Tables) -> bool:
    """Add the tables of one DQT segment to `tables`; False when the segment is malformed."""
    position = 0
    while position < len(segment):
        precision, table_id = segment[position] >> 4, segment[position] & 0x0F
        size = 64 * (precision + 1)
        if precision > 1 or table_id > 3 or position + 1 + size > len(segment):
            return False
        tables[table_id] = segment[position + 1 : position + 1 + size]
        position += 1 + size
    return True


@cache
def quantization_tables(quality: int) -> Tables:
    """The quantization tables libjpeg-turbo writes for 8-bit colour at `quality` (1-100): luminance (0)
    and chrominance (1), as `core.encode` encodes answers."""
    sample = imagecodecs.jpeg8_encode(np.zeros((16, 16, 3), np.uint8), level=quality, subsampling="420")
    header = read_header(bytes(sample))
    if header is None:
        raise RuntimeError(f"libjpeg-turbo wrote an unreadable JPEG at quality {quality}")
    return header.tables
