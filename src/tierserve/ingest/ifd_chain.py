"""Making a SubIFD pyramid readable by page-pyramid readers too, without copying tile data.

OME-TIFF keeps reduced levels in SubIFDs of the full-resolution image (napari, QuPath/Bio-Formats,
OMERO, libvips read them there). IIPImage and OpenSlide read a pyramid from the main chain of
directories instead (IFD 0 -> IFD 1 -> ...). `chain_levels` appends a copy of each SubIFD directory
(a few hundred bytes each) at the end of the file and links the copies after IFD 0. Their entries
are byte-identical to the originals, so tile offsets, byte counts and every other out-of-line value
point at the same bytes: both kinds of reader decode the very same tiles. Only BigTIFF is handled
(ingest always writes BigTIFF).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import BinaryIO

_SUBIFDS = 330
_BIGTIFF = 43
_ENTRY = 20  # BigTIFF directory entry: tag (2), type (2), count (8), value or offset (8)
_OFFSET_TYPES = {16, 18}  # LONG8, IFD8


def chain_levels(path: Path) -> int:
    """Link copies of IFD 0's SubIFDs into the main chain of `path`; returns how many were linked.

    IFD 0 must be the only main directory (next-IFD offset 0). Raises ValueError for classic TIFF,
    a second main directory, or a SubIFDs tag that is not a list of 8-byte offsets. Flushed and
    fsynced before returning.
    """
    with path.open("r+b") as handle:
        order = {b"II": "<", b"MM": ">"}.get(handle.read(2))
        if order is None:
            raise ValueError(f"{path.name} is not a TIFF file")
        version, offset_size, _, first = struct.unpack(order + "HHHQ", handle.read(14))
        if version != _BIGTIFF or offset_size != 8:
            raise ValueError(f"{path.name} is not a BigTIFF file")
        entries, next_at = _directory(handle, order, first)
        handle.seek(next_at)
        if struct.unpack(order + "Q", handle.read(8))[0] != 0:
            raise ValueError(f"{path.name} already has more than one main directory")
        levels = _subifd_offsets(handle, order, entries)
        link_at = next_at
        for level in levels:
            copy = _directory_bytes(handle, order, level)
            end = handle.seek(0, os.SEEK_END)
            start = end + (-end % 8)
            handle.write(b"\0" * (start - end) + copy + struct.pack(order + "Q", 0))
            handle.seek(link_at)
            handle.write(struct.pack(order + "Q", start))
            link_at = start + len(copy)
        handle.flush()
        os.fsync(handle.fileno())
    return len(levels)


def _directory(handle: BinaryIO, order: str, offset: int) -> tuple[list[bytes], int]:
    """The raw entries of the directory at `offset` and the position of its next-IFD offset."""
    handle.seek(offset)
    (count,) = struct.unpack(order + "Q", handle.read(8))
    raw = handle.read(count * _ENTRY)
    return [raw[i : i + _ENTRY] for i in range(0, len(raw), _ENTRY)], offset + 8 + count * _ENTRY


def _directory_bytes(handle: BinaryIO, order: str, offset: int) -> bytes:
    """Entry count and entries of the directory at `offset`, without its next-IFD offset."""
    entries, _ = _directory(handle, order, offset)
    return struct.pack(order + "Q", len(entries)) + b"".join(entries)


def _subifd_offsets(handle: BinaryIO, order: str, entries: list[bytes]) -> list[int]:
    for entry in entries:
        tag, kind, count = struct.unpack(order + "HHQ", entry[:12])
        if tag != _SUBIFDS:
            continue
        if kind not in _OFFSET_TYPES:
            raise ValueError(f"SubIFDs of type {kind} are not 8-byte offsets")
        if count == 1:
            return [struct.unpack(order + "Q", entry[12:])[0]]
        handle.seek(struct.unpack(order + "Q", entry[12:])[0])
        return list(struct.unpack(order + f"{count}Q", handle.read(8 * count)))
    return []
