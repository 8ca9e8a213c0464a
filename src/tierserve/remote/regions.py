"""Cutting a whole image into the full-resolution regions a mirror fetches, and joining them again.

A region is a rectangle of full-resolution pixels (downsample 0, so its width and height are tier
pixels too); regions are `size` square (a multiple of the 256-pixel tile) except along the right and
bottom edges. Joining streams: libvips reads the region files row by row while it writes a tiled TIFF,
so no image is ever whole in memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pyvips

from tierserve.core.tiers import TILE
from tierserve.core.vips_errors import vips_reason
from tierserve.errors import IngestError

#: Default edge of a fetched region, full-resolution pixels.
REGION_SIZE = 2048
#: Pixels per inch written when the pixel size is unknown (ingest reads 72 dpi as "not stated").
PLACEHOLDER_DPI = 72.0
#: Most region files one join opens at once (each holds a file descriptor while libvips reads it).
MAX_OPEN_FILES = 256


@dataclass(frozen=True, slots=True)
class Region:
    """A rectangle of an image in full-resolution pixels; `row`/`column` place it in the grid."""

    row: int
    column: int
    left: int
    top: int
    width: int
    height: int

    def params(self) -> dict[str, str | int]:
        """The download parameters that ask for exactly this rectangle at full resolution."""
        return {"downsample": 0, "left": self.left, "top": self.top, "width": self.width, "height": self.height}

    @property
    def stem(self) -> str:
        """The region's file name without suffix, e.g. ``r0003-c0012``."""
        return f"r{self.row:04d}-c{self.column:04d}"


def plan_regions(width: int, height: int, size: int = REGION_SIZE) -> list[Region]:
    """The regions covering a `width` x `height` image in row-major order.

    Raises ValueError for an empty image or a `size` that is not a positive multiple of the stored
    tile (so regions are whole numbers of tiles).
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"an image of {width}x{height} pixels has no regions")
    if size <= 0 or size % TILE:
        raise ValueError(f"region size must be a positive multiple of {TILE}, got {size}")
    return [
        Region(row, column, left, top, min(size, width - left), min(size, height - top))
        for row, top in enumerate(range(0, height, size))
        for column, left in enumerate(range(0, width, size))
    ]


def join_regions(
    files: Sequence[Path], regions: Sequence[Region], width: int, height: int, out: Path, resolution_um: float | None
) -> None:
    """Write the region files (in `regions` order, row-major) as one tiled BigTIFF at `out`, losslessly,
    stating `resolution_um` µm per pixel (None: the 72 dpi that readers take for "not stated").

    Every file must decode to its region's size with the same bands and sample format; the TIFF is
    written to ``out`` + ``.part`` and renamed when complete. More than MAX_OPEN_FILES regions are
    joined a row at a time into strips first, so libvips never holds more files open than that.
    Raises IngestError naming the bad file.
    """
    if len(files) <= MAX_OPEN_FILES:
        _join(files, regions, width, height, out, resolution_um)
        return
    strips: list[Path] = []
    rows: list[Region] = []
    try:
        for row in sorted({region.row for region in regions}):
            members = [(path, region) for path, region in zip(files, regions, strict=True) if region.row == row]
            first = members[0][1]
            strip = Region(row, 0, 0, first.top, width, first.height)
            strips.append(out.with_name(f"{out.stem}-strip{row:04d}.tif"))
            rows.append(strip)
            members_files, members_regions = [path for path, _ in members], [region for _, region in members]
            _join(members_files, members_regions, width, first.height, strips[-1], resolution_um)
        join_regions(strips, rows, width, height, out, resolution_um)
    finally:
        for strip_file in strips:
            strip_file.unlink(missing_ok=True)


def _join(
    files: Sequence[Path], regions: Sequence[Region], width: int, height: int, out: Path, resolution_um: float | None
) -> None:
    columns = 1 + max(region.column for region in regions)
    images = [_load(path, region) for path, region in zip(files, regions, strict=True)]
    formats = {(image.bands, image.format) for image in images}
    if len(formats) != 1:
        raise IngestError(f"the regions of {out.stem} differ in bands or sample format: {sorted(formats)}")
    # arrayjoin puts every image at the top left of a cell as large as the largest: the full regions'
    # size, so each region lands at its left, top, and the edge cells' padding is cropped off
    joined = pyvips.Image.arrayjoin(images, across=columns)
    if joined.width < width or joined.height < height:
        raise IngestError(f"the regions of {out.stem} join to {joined.width}x{joined.height}, not {width}x{height}")
    joined = joined.crop(0, 0, width, height)
    partial = out.with_name(out.name + ".part")
    try:
        joined.tiffsave(
            str(partial),
            tile=True,
            tile_width=TILE,
            tile_height=TILE,
            bigtiff=True,
            compression="deflate",
            predictor="horizontal",
            level=1,
            resunit="cm" if resolution_um else "inch",
            xres=1000 / resolution_um if resolution_um else PLACEHOLDER_DPI / 25.4,
            yres=1000 / resolution_um if resolution_um else PLACEHOLDER_DPI / 25.4,
        )
    except pyvips.Error as exc:
        partial.unlink(missing_ok=True)
        raise IngestError(f"cannot join the regions of {out.stem}: {vips_reason(exc)}") from exc
    partial.replace(out)


def _load(path: Path, region: Region) -> pyvips.Image:
    """A region file opened for one top-to-bottom pass, checked against the region's size."""
    try:
        image = pyvips.Image.new_from_file(str(path), access="sequential", fail_on="warning")
    except pyvips.Error as exc:
        raise IngestError(f"region file {path.name} cannot be read: {vips_reason(exc)}") from exc
    if (image.width, image.height) != (region.width, region.height):
        raise IngestError(
            f"region file {path.name} is {image.width}x{image.height}, expected {region.width}x{region.height}"
        )
    return image
