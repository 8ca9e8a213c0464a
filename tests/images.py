"""Independent NumPy computations of what the server should return, and image helpers for tests."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import numpy.typing as npt
import tifffile
from PIL import Image

Array = npt.NDArray[np.float64]


def multiscale_pattern(height: int, width: int, bands: int, top: int, seed: int) -> npt.NDArray[np.int64]:
    """Smooth value noise summed over octaves 2..1024 px, so every tier has detail between neighbours."""
    rng = np.random.default_rng(seed)
    total = np.zeros((height, width, bands))
    octaves = [2**k for k in range(1, 11)]
    for cell in octaves:
        gh, gw = height // cell + 2, width // cell + 2
        grid = rng.uniform(-1, 1, size=(gh, gw, bands))
        ys = np.arange(height) / cell
        xs = np.arange(width) / cell
        y0, x0 = ys.astype(int), xs.astype(int)
        fy, fx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
        a = grid[y0][:, x0]
        b = grid[y0][:, x0 + 1]
        c = grid[y0 + 1][:, x0]
        d = grid[y0 + 1][:, x0 + 1]
        total += (a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy
    total /= np.abs(total).max()
    return np.clip(np.round((total + 1) / 2 * top), 0, top).astype(np.int64)


def tier(full: npt.NDArray[np.int64] | Array, downsample: int) -> Array:
    """Tier `downsample` of a full-resolution array: mean of 2**d x 2**d blocks, partial blocks dropped."""
    s = 1 << downsample
    h, w = full.shape[0] >> downsample, full.shape[1] >> downsample
    cropped = np.asarray(full, dtype=np.float64)[: h * s, : w * s]
    means: Array = cropped.reshape(h, s, w, s, -1).mean(axis=(1, 3))
    return means


def expected_region(
    full: npt.NDArray[np.int64], downsample: int, left: int, top: int, width: int, height: int
) -> Array:
    """The clipped region the API should return: tier pixels from (left >> d, top >> d)."""
    t = tier(full, downsample)
    x0, y0 = left >> downsample, top >> downsample
    return t[y0 : y0 + height, x0 : x0 + width]


def window(values: Array, bounds: list[tuple[int, int]]) -> Array:
    """The `range` filter: (v - lo) * 255 / (hi - lo), rounded, clipped to 0..255, per channel."""
    out = np.empty_like(values)
    for c, (lo, hi) in enumerate(bounds):
        out[..., c] = np.clip(np.floor((values[..., c] - lo) * 255 / (hi - lo) + 0.5), 0, 255)
    return out


def decode_jpeg(data: bytes) -> npt.NDArray[np.uint8]:
    """Decode a JPEG with Pillow; asserts it is 8-bit RGB."""
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG"
    assert image.mode == "RGB"
    return np.asarray(image)


def psnr(actual: npt.NDArray[np.uint8] | Array, expected: Array) -> float:
    error = np.mean((np.asarray(actual, dtype=np.float64) - expected) ** 2)
    return float("inf") if error == 0 else float(10 * np.log10(255.0**2 / error))


def slide_pattern(height: int, width: int, seed: int) -> npt.NDArray[np.int64]:
    """An 8-bit RGB pattern like a stained slide: mostly luminance detail, gentle colour (JPEG 4:2:0
    keeps such images well, as it does real slides)."""
    grey = multiscale_pattern(height, width, 1, 255, seed)
    colour = multiscale_pattern(height, width, 3, 255, seed + 1000)
    return np.clip(np.round(0.8 * grey + 0.2 * colour), 0, 255).astype(np.int64)


def stored_tile(path: Path, level: int, row: int, col: int) -> bytes:
    """Tile (row, col) of `level` of a pyramidal TIFF as tifffile finds it in the file, with the file's
    JPEGTables spliced in front (their EOI and the tile's SOI dropped) when it has them."""
    with tifffile.TiffFile(path) as tif:
        page = tif.series[0].levels[level].pages[0]
        index = row * -(-page.imagewidth // page.tilewidth) + col
        with path.open("rb") as handle:
            handle.seek(page.dataoffsets[index])
            data = handle.read(page.databytecounts[index])
        return bytes(page.jpegtables[:-2]) + data[2:] if page.jpegtables else data
