"""The benchmark's workloads: random requests, each written as a tierserve URL and its IIPImage equivalent.

A `Request` holds what both servers are asked for in Allen terms: tier `downsample`, `left`/`top` in
full-resolution pixels, `width`/`height` in tier pixels (None: the whole image at that tier), JPEG
`quality`, an optional `range`. IIPImage gets the same region through IIIF (region in full-resolution
pixels, size in output pixels) with the classic `QLT` command for per-request quality.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

TILE = 256
REGION = 1000
#: Random requests per workload, replayed in a cycle by wrk.
PATHS_PER_WORKLOAD = 5000


@dataclass(frozen=True)
class BenchImage:
    """A benchmark image: SectionImage id, full-resolution size, stored levels, and its file name in the
    IIPImage folder (a link to the very file tierserve serves)."""

    id: int
    width: int
    height: int
    levels: int
    file_name: str
    store_key: str

    def tier_size(self, downsample: int) -> tuple[int, int]:
        """Tier pixels of the whole image at `downsample` (each tier halves, rounding down)."""
        return self.width >> downsample, self.height >> downsample


@dataclass(frozen=True)
class Request:
    image: BenchImage
    downsample: int
    quality: int
    left: int = 0
    top: int = 0
    width: int | None = None
    height: int | None = None
    range: tuple[int, ...] | None = None

    @property
    def output_size(self) -> tuple[int, int]:
        """Width and height of the answer in tier pixels."""
        if self.width is None or self.height is None:
            return self.image.tier_size(self.downsample)
        return self.width, self.height

    def tierserve_path(self) -> str:
        params: dict[str, object] = {}
        if self.downsample:
            params["downsample"] = self.downsample
        if self.width is not None:
            params |= {"left": self.left, "top": self.top, "width": self.width, "height": self.height}
        params["quality"] = self.quality
        if self.range is not None:
            params["range"] = ",".join(map(str, self.range))
        return f"/api/v2/section_image_download/{self.image.id}?{urlencode(params)}"

    def iipimage_path(self) -> str:
        width, height = self.output_size
        if self.width is None:
            region = "full"
        else:
            region = f"{self.left},{self.top},{width << self.downsample},{height << self.downsample}"
        size = "full" if self.downsample == 0 else f"{width},{height}"
        return f"/fcgi-bin/iipsrv.fcgi?QLT={self.quality}&IIIF={self.image.file_name}/{region}/{size}/0/default.jpg"


@dataclass(frozen=True)
class Workload:
    """A named stream of random requests; `iipimage` False when IIPImage has no comparable request."""

    key: str
    title: str
    make: Callable[[random.Random], Request]
    iipimage: bool = True
    floor: bool = True

    def requests(self) -> list[Request]:
        """The workload's `PATHS_PER_WORKLOAD` requests, the same on every call (seeded by the key)."""
        rng = random.Random(self.key)
        return [self.make(rng) for _ in range(PATHS_PER_WORKLOAD)]


def region(
    image: BenchImage, quality: int, window: tuple[int, ...] | None = None
) -> Callable[[random.Random], Request]:
    """Random 1000x1000 full-resolution regions anywhere in `image`."""

    def make(rng: random.Random) -> Request:
        left, top = rng.randrange(image.width - REGION + 1), rng.randrange(image.height - REGION + 1)
        return Request(image, 0, quality, left, top, REGION, REGION, window)

    return make


def whole(image: BenchImage, downsample: int, quality: int) -> Callable[[random.Random], Request]:
    """The whole image at tier `downsample`."""
    return lambda rng: Request(image, downsample, quality)


def tiles(image: BenchImage, quality: int) -> Callable[[random.Random], Request]:
    """A random whole 256x256 tile of a random stored tier (edge tiles excluded, so that both servers
    answer exactly 256x256)."""

    def make(rng: random.Random) -> Request:
        while True:
            tier = rng.randrange(image.levels)
            columns, rows = (side // TILE for side in image.tier_size(tier))
            if columns and rows:
                break
        x, y = rng.randrange(columns) * TILE, rng.randrange(rows) * TILE
        return Request(image, tier, quality, x << tier, y << tier, TILE, TILE)

    return make


def standard_workloads(large: BenchImage, deep: BenchImage, small: BenchImage, huge: BenchImage) -> list[Workload]:
    """Workloads 1-4 and 6 of the issue, plus the source-size pair (workload 5 is timed separately)."""
    not_stored = large.levels  # every tier whose longer side is at least 512 pixels is stored
    width, height = large.tier_size(not_stored)
    equalization = (0, 923, 0, 987, 0, 4095)
    return [
        Workload("1-region-q75", "1000x1000 full-res region, Q75", region(large, 75)),
        Workload("1-region-q100", "1000x1000 full-res region, Q100", region(large, 100)),
        Workload("2-whole-ds4", "whole image, downsample=4 (stored tier), Q75", whole(large, 4, 75)),
        Workload("2-whole-ds2", "whole image, downsample=2 (stored tier), Q75", whole(large, 2, 75)),
        Workload(
            "3-whole-not-stored",
            f"whole image, downsample={not_stored} ({width}x{height}, resampled), Q75",
            whole(large, not_stored, 75),
        ),
        Workload(
            "4-range-12bit",
            "12-bit 3-channel 1000x1000 region, range windowing, Q75",
            region(deep, 75, equalization),
            iipimage=False,
        ),
        Workload("6-tiles", "256x256 tile, random tier and position, Q75", tiles(large, 75)),
        Workload(
            f"size-{small.width}", f"1000x1000 region of a {small.width}x{small.height} source, Q75", region(small, 75)
        ),
        Workload(
            f"size-{huge.width}", f"1000x1000 region of a {huge.width}x{huge.height} source, Q75", region(huge, 75)
        ),
    ]
