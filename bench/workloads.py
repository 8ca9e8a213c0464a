"""The benchmark's workloads: random requests, each written as a tierserve URL and its IIPImage equivalent.

A `Request` holds what both servers are asked for in Allen terms: tier `downsample`, `left`/`top` in
full-resolution pixels, `width`/`height` in tier pixels (None: the whole image at that tier), JPEG
`quality`, an optional `range`. IIPImage gets the same region through IIIF (region in full-resolution
pixels, size in output pixels) with the classic `QLT` command for per-request quality. An `iiif`
request goes to tierserve's IIIF Image API 2 too (`/iiif/2/<id>/...`, whose `default.jpg` quality is
TIERSERVE_IIIF_JPEG_QUALITY, set to the request's by the benchmark), sized as OpenSeadragon sizes
tiles (`w,`), or as a `!w,h` thumbnail of the whole image (`fit`).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
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
    iiif: bool = False
    fit: tuple[int, int] | None = None

    @property
    def output_size(self) -> tuple[int, int]:
        """Width and height of the answer in tier pixels (`fit`: the whole image scaled to fit the box,
        rounded as IIIF servers round)."""
        if self.fit is not None:
            scale = min(self.fit[0] / self.image.width, self.fit[1] / self.image.height)
            return max(1, round(self.image.width * scale)), max(1, round(self.image.height * scale))
        if self.width is None or self.height is None:
            return self.image.tier_size(self.downsample)
        return self.width, self.height

    def iiif_path(self) -> str:
        """`{region}/{size}/0/default.jpg` of the request as an IIIF Image API 2 client writes it."""
        width, height = self.output_size
        if self.width is None or self.height is None:
            region = "full"
        else:
            region = f"{self.left},{self.top},{width << self.downsample},{height << self.downsample}"
        if self.fit is not None:
            size = f"!{self.fit[0]},{self.fit[1]}"
        elif self.iiif:
            size = f"{width},"
        else:
            size = "full" if self.downsample == 0 else f"{width},{height}"
        return f"{region}/{size}/0/default.jpg"

    def tierserve_path(self) -> str:
        if self.iiif:
            return f"/iiif/2/{self.image.id}/{self.iiif_path()}"
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
        return f"/fcgi-bin/iipsrv.fcgi?QLT={self.quality}&IIIF={self.image.file_name}/{self.iiif_path()}"


@dataclass(frozen=True)
class Workload:
    """A named stream of random requests; `iipimage` False when IIPImage has no comparable request."""

    key: str
    title: str
    #: One random request, or a batch of them made at once (a viewer visit).
    make: Callable[[random.Random], Request] | Callable[[random.Random], list[Request]]
    iipimage: bool = True
    floor: bool = True
    #: Each server with its cache at the default setting (IIPImage's tile cache on); else caches off.
    cached: bool = False

    def requests(self) -> list[Request]:
        """At least `PATHS_PER_WORKLOAD` requests (whole batches), the same on every call (seeded by the key)."""
        rng = random.Random(self.key)
        found: list[Request] = []
        while len(found) < PATHS_PER_WORKLOAD:
            made = self.make(rng)
            found += made if isinstance(made, list) else [made]
        return found


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


def iiif_tiles(image: BenchImage, quality: int) -> Callable[[random.Random], Request]:
    """`tiles` asked for through IIIF, as OpenSeadragon asks for a whole tile."""

    def make(rng: random.Random) -> Request:
        tile = tiles(image, quality)(rng)
        return Request(image, tile.downsample, quality, tile.left, tile.top, TILE, TILE, iiif=True)

    return make


def thumbnails(images: list[BenchImage], quality: int) -> Callable[[random.Random], Request]:
    """A `!w,h` thumbnail of a whole image, the box's sides random in 100-400 pixels."""

    def make(rng: random.Random) -> Request:
        box = (rng.randrange(100, 401), rng.randrange(100, 401))
        return Request(rng.choice(images), 0, quality, iiif=True, fit=box)

    return make


#: The browser window of a replayed viewer visit (CSS pixels).
VIEWPORT = (1280, 800)
#: Zoom and pan steps of one visit after its home view.
VISIT_STEPS = 14


def viewer_visit(image: BenchImage, quality: int) -> Callable[[random.Random], list[Request]]:
    """One OpenSeadragon visit of `image` over IIIF: the home view, then random zooms in and out and pans;
    for each view the tiles of the level at least as dense as the screen and of the next coarser level
    (shown while the finer ones load), each tile once per visit as a browser cache would."""

    def visit(rng: random.Random) -> list[Request]:
        zoom = min(VIEWPORT[0] / image.width, VIEWPORT[1] / image.height)  # screen pixels per image pixel
        centre = (image.width / 2, image.height / 2)
        seen: dict[str, Request] = {}
        for step in range(VISIT_STEPS + 1):
            for request in _view_tiles(image, quality, centre, zoom):
                seen.setdefault(request.iiif_path(), request)
            if step == VISIT_STEPS:
                break
            move = rng.random()
            if move < 0.45 and zoom < 1:
                zoom *= 2
                centre = (rng.uniform(0, image.width), rng.uniform(0, image.height))
            elif move < 0.6 and zoom > 2 * VIEWPORT[0] / image.width:
                zoom /= 2
            else:
                dx, dy = (rng.uniform(-0.5, 0.5) * side / zoom for side in VIEWPORT)
                centre = (min(max(centre[0] + dx, 0), image.width), min(max(centre[1] + dy, 0), image.height))
        return list(seen.values())

    return visit


def _view_tiles(image: BenchImage, quality: int, centre: tuple[float, float], zoom: float) -> Iterator[Request]:
    """The tiles of one view: at the finest needed scale factor (a power of two, tier pixels at least as
    dense as screen pixels) and the next coarser one; edge tiles as small as the image leaves them."""
    finest = min(image.levels - 1, max(0, math.floor(math.log2(1 / zoom)))) if zoom < 1 else 0
    half_w, half_h = VIEWPORT[0] / zoom / 2, VIEWPORT[1] / zoom / 2
    x0, x1 = max(0.0, centre[0] - half_w), min(float(image.width), centre[0] + half_w)
    y0, y1 = max(0.0, centre[1] - half_h), min(float(image.height), centre[1] + half_h)
    for tier in sorted({min(finest + 1, image.levels - 1), finest}, reverse=True):
        span = TILE << tier
        for row in range(int(y0) // span, (math.ceil(y1) - 1) // span + 1):
            for col in range(int(x0) // span, (math.ceil(x1) - 1) // span + 1):
                left, top = col * span, row * span
                width = (min(span, image.width - left)) >> tier
                height = (min(span, image.height - top)) >> tier
                if width and height:
                    yield Request(image, tier, quality, left, top, width, height, iiif=True)


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
            "6-tiles-stored-q90",
            "256x256 tile, random tier and position, at the stored quality (Q90, ingest's default): tierserve "
            "answers the stored tile (TIERSERVE_TILE_PASSTHROUGH), IIPImage 1.1 re-encodes",
            tiles(large, 90),
        ),
        Workload(
            f"size-{small.width}", f"1000x1000 region of a {small.width}x{small.height} source, Q75", region(small, 75)
        ),
        Workload(
            f"size-{huge.width}", f"1000x1000 region of a {huge.width}x{huge.height} source, Q75", region(huge, 75)
        ),
        Workload("7-iiif-tiles", "IIIF 2 tile (256x256, random scale factor and position), Q75", iiif_tiles(large, 75)),
        Workload(
            "7-iiif-thumbnails",
            "IIIF 2 thumbnail full/!w,h/ (w, h random 100-400), Q75",
            thumbnails([large, small, huge], 75),
            floor=False,
        ),
        Workload(
            "8-viewer",
            f"replayed OpenSeadragon visits ({VIEWPORT[0]}x{VIEWPORT[1]}, {VISIT_STEPS} zooms and pans, "
            "each tile once per visit), IIIF 2, Q75, caches at their defaults",
            viewer_visit(large, 75),
            floor=False,
            cached=True,
        ),
    ]
