"""Tier maths: which stored pyramid level to read, which box of it, and how much to shrink it.

Units: *full-resolution* pixels are pixels of pyramid level 0; *tier* pixels are pixels of tier d,
whose size is ``floor(full / 2**d)`` on each axis.  Tier pixel (i, j) is the area average of the
full-resolution pixels ``[i*s, (i+1)*s) x [j*s, (j+1)*s)`` with ``s = 2**d``; a partial block at the
right or bottom edge is dropped.  Stored level n is tier n, so tier d is read from level
``min(d, levels - 1)`` and area-averaged further when ``d`` is beyond the last stored level.
"""

from __future__ import annotations

from dataclasses import dataclass

from tierserve.errors import InvalidRequest, RegionOutsideImage

#: Pyramids stop at the first level whose longer side is under this many pixels.
SMALLEST_LEVEL_SIDE = 512
#: Stored levels are tiled in TILE x TILE pixel tiles.
TILE = 256


@dataclass(frozen=True, slots=True)
class Box:
    """An axis-aligned rectangle: origin (x, y), size (width, height), in one pixel grid."""

    x: int
    y: int
    width: int
    height: int

    @property
    def right(self) -> int:
        return self.x + self.width

    @property
    def bottom(self) -> int:
        return self.y + self.height

    def intersect(self, other: Box) -> Box | None:
        """The overlap of two boxes, or None when they do not overlap."""
        x0, y0 = max(self.x, other.x), max(self.y, other.y)
        x1, y1 = min(self.right, other.right), min(self.bottom, other.bottom)
        if x1 <= x0 or y1 <= y0:
            return None
        return Box(x0, y0, x1 - x0, y1 - y0)

    def scaled(self, factor: int) -> Box:
        """The same box in a grid `factor` times finer."""
        return Box(self.x * factor, self.y * factor, self.width * factor, self.height * factor)


@dataclass(frozen=True, slots=True)
class Window:
    """A region request after defaults: left/top in full-resolution pixels, width/height in tier pixels."""

    downsample: int
    left: int
    top: int
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class ReadPlan:
    """How to produce a window: read `box` of stored `level`, then area-average by `shrink`.

    `output` is the clipped window in tier pixels; its size is the size of the produced image.
    """

    level: int
    box: Box
    shrink: int
    output: Box


def tier_size(full: int, downsample: int) -> int:
    """Size in tier pixels of a full-resolution extent at tier `downsample` (floor division)."""
    return full >> downsample


def level_count(width: int, height: int) -> int:
    """Number of pyramid levels for a full-resolution size: halve until the longer side is < 512."""
    if width < 1 or height < 1:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    count = 1
    while max(width, height) >= SMALLEST_LEVEL_SIDE and min(width, height) >= 2:
        width, height = width // 2, height // 2
        count += 1
    return count


def max_downsample(width: int, height: int) -> int:
    """Largest downsample that leaves at least one tier pixel on both axes."""
    return min(width, height).bit_length() - 1


def resolve_window(
    section: Box,
    downsample: int,
    left: int | None = None,
    top: int | None = None,
    width: int | None = None,
    height: int | None = None,
    downsample_dimensions: bool = False,
) -> Window:
    """Apply the Allen defaults to a request.

    `section` is the SubImage rectangle (x, y, width, height) in full-resolution pixels.  Missing
    `left`/`top` default to the section origin; missing `width`/`height` to the section size at the
    tier, ``floor(size / 2**d)`` and at least 1.  With `downsample_dimensions`, explicit width and
    height are full-resolution values and are divided by ``2**d`` (floor, at least 1).
    """
    for name, value in (("width", width), ("height", height)):
        if value is not None and value < 1:
            raise InvalidRequest(f"{name} must be at least 1, got {value}")

    def tier_extent(explicit: int | None, section_extent: int) -> int:
        if explicit is None:
            return max(1, tier_size(section_extent, downsample))
        if downsample_dimensions:
            return max(1, tier_size(explicit, downsample))
        return explicit

    return Window(
        downsample=downsample,
        left=section.x if left is None else left,
        top=section.y if top is None else top,
        width=tier_extent(width, section.width),
        height=tier_extent(height, section.height),
    )


def plan_read(image_width: int, image_height: int, levels: int, window: Window) -> ReadPlan:
    """Plan the read of `window` from a pyramid of `levels` levels over a full-resolution image.

    The window's origin snaps to the tier grid (``floor(left / 2**d)``), so the output starts at
    most ``2**d - 1`` full-resolution pixels before `left`.  The window is clipped to the image;
    a window with no pixel inside it raises `RegionOutsideImage`.
    """
    d = window.downsample
    if d > max_downsample(image_width, image_height):
        raise InvalidRequest(
            f"downsample={d} leaves no pixels of this {image_width}x{image_height} image; "
            f"the largest downsample is {max_downsample(image_width, image_height)}"
        )
    s = 1 << d
    tier = Box(0, 0, tier_size(image_width, d), tier_size(image_height, d))
    wanted = Box(window.left // s, window.top // s, window.width, window.height)
    output = wanted.intersect(tier)
    if output is None:
        raise RegionOutsideImage(
            f"region left={window.left} top={window.top} width={window.width} height={window.height} "
            f"at downsample={d} lies outside the {image_width}x{image_height} image"
        )
    level = min(d, levels - 1)
    shrink = 1 << (d - level)
    return ReadPlan(level=level, box=output.scaled(shrink), shrink=shrink, output=output)
