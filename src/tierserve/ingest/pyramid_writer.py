"""Writing one tiled, pyramidal OME-TIFF from a libvips image in bounded memory.

Level 0 is streamed from the source into an uncompressed scratch TIFF; each further level is the
2x2 area average of the previous one (odd last row/column dropped), kept in float in a scratch
file so that every level is the exact mean of its full-resolution block, rounded once.  tifffile
then writes level 0 as the main image and levels 1.. as its SubIFDs, 256x256 tiles, pulling one
strip of 256 rows at a time: 8-bit layers as JPEG tiles (YCbCr 4:2:0 for RGB), deeper layers
lossless (deflate with horizontal predictor, which libtiff everywhere reads). Finally copies of the
SubIFD directories are chained after level 0 (`ifd_chain`), so that IIPImage and OpenSlide, which
read page pyramids, serve the same file and tiles.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyvips
import tifffile

from tierserve.core.tiers import TILE, level_count
from tierserve.ingest.ifd_chain import chain_levels

#: Bytes of raw tiles handed to the encoder threads at a time (bounds ingest memory).
_ENCODE_BUFFER = 8 * 1024 * 1024
#: Called with the number of tiles just written.
TileCallback = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class PyramidInfo:
    width: int
    height: int
    levels: int
    bands: int
    sample_bits: int


def tiles_in_pyramid(width: int, height: int) -> int:
    """Total number of 256x256 tiles over all levels of a pyramid of this full-resolution size."""
    total = 0
    for _ in range(level_count(width, height)):
        total += -(-width // TILE) * -(-height // TILE)
        width, height = width // 2, height // 2
    return total


def write_pyramid(
    image: pyvips.Image,
    destination: Path,
    scratch: Path,
    *,
    quality: int,
    resolution_um: float | None = None,
    on_tiles: TileCallback | None = None,
) -> PyramidInfo:
    """Write `image` (1 or 3 bands, uchar or ushort) as a pyramidal OME-TIFF at `destination`."""
    levels = level_count(image.width, image.height)
    with tempfile.TemporaryDirectory(dir=scratch, prefix="levels-") as tmp:
        level_files = _build_levels(image, Path(tmp), levels)
        with tifffile.TiffWriter(destination, bigtiff=True, ome=True) as tif:
            for n, level_file in enumerate(level_files):
                level = pyvips.Image.new_from_file(str(level_file), access="sequential")
                if n > 0:
                    level = level.rint().cast(image.format)
                tif.write(
                    _tiles(level, on_tiles),
                    shape=_shape(level),
                    dtype=_dtype(level),
                    tile=(TILE, TILE),
                    **_encoding(level, quality),
                    **(_first_level_options(level, levels, resolution_um) if n == 0 else {"subfiletype": 1}),
                    maxworkers=pyvips.concurrency_get(),  # this process's share of the cores
                    buffersize=_ENCODE_BUFFER,
                )
    chain_levels(destination)
    return PyramidInfo(
        width=image.width,
        height=image.height,
        levels=levels,
        bands=image.bands,
        sample_bits=8 if str(image.format) == "uchar" else 16,
    )


def _build_levels(image: pyvips.Image, directory: Path, levels: int) -> list[Path]:
    """Scratch files of every level. Levels 1.. are kept as float 2x2 means of the previous float
    level, so each is the exact mean of its full-resolution block; they are rounded (half to even)
    only when their tiles are written."""
    files = [directory / "level-0.tif"]
    image.write_to_file(str(files[0]))
    for n in range(1, levels):
        previous = pyvips.Image.new_from_file(str(files[-1]), access="sequential")
        even = previous.crop(0, 0, previous.width // 2 * 2, previous.height // 2 * 2)
        path = directory / f"level-{n}.tif"
        even.cast("float").shrink(2, 2).write_to_file(str(path))
        files.append(path)
    return files


def _tiles(level: pyvips.Image, on_tiles: TileCallback | None) -> Iterator[npt.NDArray[Any]]:
    """Row-major 256x256 tiles, edge tiles padded by repeating the last row/column."""
    for y in range(0, level.height, TILE):
        rows = min(TILE, level.height - y)
        region = level.crop(0, y, level.width, rows)
        strip = np.frombuffer(region.write_to_memory(), dtype=_dtype(level)).reshape(_shape(region))
        pad = [(0, TILE - rows), (0, -level.width % TILE)] + [(0, 0)] * (strip.ndim - 2)
        if any(after for _, after in pad):
            strip = np.pad(strip, pad, mode="edge")
        count = strip.shape[1] // TILE
        if on_tiles is not None:
            on_tiles(count)
        for x in range(count):
            yield np.ascontiguousarray(strip[:, x * TILE : (x + 1) * TILE])


def _shape(level: pyvips.Image) -> tuple[int, ...]:
    if level.bands == 1:
        return (level.height, level.width)
    return (level.height, level.width, level.bands)


def _dtype(level: pyvips.Image) -> str:
    return "uint8" if str(level.format) == "uchar" else "uint16"


def _encoding(level: pyvips.Image, quality: int) -> dict[str, Any]:
    photometric = "rgb" if level.bands == 3 else "minisblack"
    if str(level.format) == "uchar":
        return {"compression": "jpeg", "compressionargs": {"level": quality}, "photometric": photometric}
    return {"compression": "zlib", "predictor": True, "photometric": photometric}


def _first_level_options(level: pyvips.Image, levels: int, resolution_um: float | None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"axes": "YX" if level.bands == 1 else "YXS"}
    if resolution_um is not None:
        metadata |= {
            "PhysicalSizeX": resolution_um,
            "PhysicalSizeXUnit": "µm",
            "PhysicalSizeY": resolution_um,
            "PhysicalSizeYUnit": "µm",
        }
    return {"subifds": levels - 1, "metadata": metadata}
