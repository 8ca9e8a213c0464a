"""Stored JPEG tiles as answers: whether a tile's own stream is what a JPEG request at a quality asks for.

A request for exactly one whole stored tile, with nothing done to its pixels, at the quality the tile
was stored at, is answered with the tile's JPEG stream as it is (`TileReader.stored_jpeg`): no decode,
no encode. It decodes to exactly the pixels a render would start from, so it is at least as faithful
as any re-encode of them; its chroma is the stored one (4:2:0 as ingest writes it, whatever
`TIERSERVE_JPEG_CHROMA` says: subsampled chroma cannot be restored by re-encoding it).

"The quality the tile was stored at" is decided by the quantization tables: the tile's (in its own
stream, or in the TIFF's JPEGTables) must equal those libjpeg-turbo writes at the requested quality
(`quantization_tables`, from an encode by the same library that encodes answers). Only streams an
encode could have written qualify (`JpegHeader.answers`): baseline, of the tile's size, three
components quantized by tables 0, 1, 1 in one interleaved scan, and no metadata an encode leaves
out (EXIF, ICC profiles, Adobe colour transforms: only the JFIF APP0 segment).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from types import MappingProxyType

import imagecodecs
import numpy as np

_SOI, _SOS, _EOI, _DQT, _SOF0, _APP0, _APP15 = 0xD8, 0xDA, 0xD9, 0xDB, 0xC0, 0xE0, 0xEF
#: Markers without a length field (RSTn, SOI, EOI, TEM).
_STANDALONE = {*range(0xD0, 0xD8), _SOI, _EOI, 0x01}
#: Start-of-frame markers (every SOFn but DHT C4, JPG C8 and DAC CC).
_FRAMES = {*range(0xC0, 0xD0)} - {0xC4, 0xC8, 0xCC}
#: Quantization table of each component of an answer: luminance 0, both chrominances 1.
_ANSWER_SELECTORS = (0, 1, 1)
#: Quantization tables by id (0-3): 64 entries, 8-bit precision bytes or 16-bit big-endian pairs.
Tables = Mapping[int, bytes]


@dataclass(frozen=True, slots=True)
class Frame:
    """A start-of-frame segment: its marker (0xC0 baseline), size in pixels, and the quantization
    table of each component."""

    marker: int
    width: int
    height: int
    table_selectors: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class JpegHeader:
    """What a JPEG stream's markers up to its first scan say: the quantization tables it defines, its
    frame (None without one), how many components the first scan holds (0 before any scan), and whether
    an application segment other than JFIF's APP0 is present."""

    tables: Tables
    frame: Frame | None
    scan_components: int
    metadata: bool

    def answers(self, width: int, height: int, quality: int) -> bool:
        """Whether this stream is what an encode of a `width` x `height` colour image at `quality` (1-100)
        writes, but for its pixels: baseline, one interleaved scan, the quality's tables, no metadata."""
        return (
            self.frame == Frame(_SOF0, width, height, _ANSWER_SELECTORS)
            and self.scan_components == len(_ANSWER_SELECTORS)
            and not self.metadata
            and self.tables == quantization_tables(quality)
        )


def read_header(stream: bytes) -> JpegHeader | None:
    """The header of `stream` (a whole JPEG, or a TIFF's JPEGTables), or None when its markers are malformed
    (no SOI, a segment cut short or shorter than its kind needs, a table of an unknown precision or id)."""
    if stream[:2] != b"\xff\xd8":
        return None
    tables: dict[int, bytes] = {}
    frame, scan_components, metadata = None, 0, False
    position = 2
    while position + 2 <= len(stream):
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
        length = int.from_bytes(stream[position + 2 : position + 4], "big")
        end = position + 2 + length
        if length < 2 or end > len(stream):
            return None
        segment = stream[position + 4 : end]
        if marker == _DQT and not _add_tables(segment, tables):
            return None
        if marker in _FRAMES:
            frame = _frame(marker, segment)
            if frame is None:
                return None
        metadata |= _APP0 < marker <= _APP15
        if marker == _SOS:
            scan_components = segment[0] if segment else 0
            break
        position = end
    return JpegHeader(MappingProxyType(tables), frame, scan_components, metadata)


def _add_tables(segment: bytes, tables: dict[int, bytes]) -> bool:
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


def _frame(marker: int, segment: bytes) -> Frame | None:
    """The frame of an SOFn segment (precision, height, width, components, 3 bytes per component), or
    None when it is shorter than its components need."""
    if len(segment) < 6 or len(segment) < 6 + 3 * segment[5]:
        return None
    selectors = tuple(segment[6 + 3 * i + 2] for i in range(segment[5]))
    return Frame(marker, int.from_bytes(segment[3:5], "big"), int.from_bytes(segment[1:3], "big"), selectors)


@cache
def quantization_tables(quality: int) -> Tables:
    """The quantization tables libjpeg-turbo writes for 8-bit colour at `quality` (1-100): luminance (0)
    and chrominance (1), as `core.encode` encodes answers (read-only: shared by every caller)."""
    sample = imagecodecs.jpeg8_encode(np.zeros((16, 16, 3), np.uint8), level=quality, subsampling="420")
    header = read_header(bytes(sample))
    if header is None:
        raise RuntimeError(f"libjpeg-turbo wrote an unreadable JPEG at quality {quality}")
    return header.tables
