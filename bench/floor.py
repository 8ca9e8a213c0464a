"""The codec floor of a request: decode exactly the stored tiles it touches, assemble, and encode the output.

Single thread, libjpeg-turbo / zlib through imagecodecs (the same libraries as libvips), no HTTP, no
database, files already open: what any server must at least spend on the request. Non-stored tiers add
the 2^k x 2^k area average (tierserve's own `tierserve.core.render_array.block_mean`),
`range` one lookup table per channel.

    python -m bench.floor --repeat 3

prints the floor of each workload of bench.compare `--repeat` times, to tell a floor that a noisy
moment inflated in a bench.compare run from the machine's.

The floor of a workload is the mean CPU of `FLOOR_SAMPLES` of its requests spread evenly over the
list wrk replays (`floor_sample`): a server's CPU per request is a mean over the requests wrk
replays, and the cost of a tile varies with what it shows (background tiles cost less), so a median,
or the first requests of the list alone, would compare a server with a floor of other requests.
"""

from __future__ import annotations

import os
import statistics
import time
from functools import cache
from pathlib import Path
from typing import cast

import imagecodecs
import numpy as np
import numpy.typing as npt
import tifffile

from bench import collection
from bench.common import collection_parser
from bench.workloads import TILE, Request, standard_workloads
from tierserve.core.render_array import block_mean

#: Requests of each workload whose floor is measured (the mean is the floor).
FLOOR_SAMPLES = 200


@cache
def level_pages(path: Path) -> tuple[list[tifffile.TiffPage], int]:
    """Level pages of a stored pyramid (level 0 and its SubIFDs) and an open file descriptor."""
    tif = tifffile.TiffFile(path)
    levels = tif.series[0].levels
    pages = [level.pages[0] for level in levels]
    if not all(isinstance(page, tifffile.TiffPage) for page in pages):
        raise ValueError(f"{path}: a level without a first page")
    return cast(list[tifffile.TiffPage], pages), os.open(path, os.O_RDONLY)


def render(path: Path, request: Request) -> npt.NDArray[np.uint8]:
    """The request's output pixels, decoded from exactly the tiles that hold them."""
    pages, fd = level_pages(path)
    level = min(request.downsample, len(pages) - 1)
    page = pages[level]
    factor = 1 << (request.downsample - level)
    out_width, out_height = request.output_size
    x0, y0 = request.left >> level, request.top >> level
    width, height = out_width * factor, out_height * factor
    columns = -(-page.shape[1] // TILE)
    bands = page.samplesperpixel
    first_col, first_row = x0 // TILE, y0 // TILE
    last_col, last_row = (x0 + width - 1) // TILE, (y0 + height - 1) // TILE
    canvas = np.empty(((last_row - first_row + 1) * TILE, (last_col - first_col + 1) * TILE, bands), page.dtype)
    for row in range(first_row, last_row + 1):
        for col in range(first_col, last_col + 1):
            index = row * columns + col
            data = os.pread(fd, page.databytecounts[index], page.dataoffsets[index])
            tile, _, _ = page.decode(data, index, jpegtables=page.jpegtables)
            if tile is None:
                raise ValueError(f"{path}: tile {index} of level {level} is empty")
            y, x = (row - first_row) * TILE, (col - first_col) * TILE
            canvas[y : y + TILE, x : x + TILE] = tile.reshape(TILE, TILE, bands)
    oy, ox = y0 - first_row * TILE, x0 - first_col * TILE
    pixels = canvas[oy : oy + height, ox : ox + width]
    if factor > 1:
        pixels = block_mean(pixels, factor)
    if request.range is not None:
        pixels = _window(pixels, request.range)
    return np.ascontiguousarray(pixels, dtype=np.uint8)


def _window(pixels: npt.NDArray[np.generic], bounds: tuple[int, ...]) -> npt.NDArray[np.uint8]:
    """Map each channel's [lower, upper] onto 0-255 through a lookup table, as `range` does."""
    out = np.empty(pixels.shape, np.uint8)
    for band in range(pixels.shape[2]):
        out[..., band] = _lut(bounds[2 * band], bounds[2 * band + 1])[pixels[..., band]]
    return out


@cache
def _lut(lower: int, upper: int) -> npt.NDArray[np.uint8]:
    """floor((v - lower) * 255 / (upper - lower) + 0.5) clipped to 0-255, for every 16-bit v."""
    values = np.arange(65536, dtype=np.float64)
    return np.clip(np.floor((values - lower) * 255 / max(1, upper - lower) + 0.5), 0, 255).astype(np.uint8)


def encode(pixels: npt.NDArray[np.uint8], quality: int) -> bytes:
    """Baseline JPEG with 4:2:0 chroma, like both servers' output in the benchmark."""
    return bytes(imagecodecs.jpeg8_encode(pixels, level=quality, subsampling="420"))


def floor_sample(requests: list[Request], count: int = FLOOR_SAMPLES) -> list[Request]:
    """`count` of `requests` spread evenly over the list (all of them when there are fewer)."""
    if len(requests) <= count:
        return requests
    return [requests[i * len(requests) // count] for i in range(count)]


def floor_ms(path: Path, requests: list[Request]) -> dict[str, float]:
    """Mean CPU milliseconds of decode + encode over `requests` (after one warm-up), and the median
    output bytes."""
    render(path, requests[0])
    cpu, size = [], []
    for request in requests:
        started = time.thread_time()
        data = encode(render(path, request), request.quality)
        cpu.append(time.thread_time() - started)
        size.append(len(data))
    return {"cpu_ms": round(statistics.fmean(cpu) * 1000, 2), "bytes": int(statistics.median(size))}


def main() -> None:
    parser = collection_parser(__doc__)
    parser.add_argument("--samples", type=int, default=FLOOR_SAMPLES, help="requests per workload")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    store = args.data_dir / "store"
    for workload in standard_workloads(**collection.ensure(args.data_dir)):
        if workload.floor:
            requests = floor_sample(workload.requests(), args.samples)
            path = store / requests[0].image.store_key
            runs = [floor_ms(path, requests)["cpu_ms"] for _ in range(args.repeat)]
            print(f"  {workload.key:24} " + "  ".join(f"{ms:8.2f}" for ms in runs) + " ms", flush=True)


if __name__ == "__main__":
    main()
