"""The render pipeline of `core.render`, step for step, on NumPy arrays: the path of small boxes.

A libvips pipeline has a fixed CPU cost to set up and run (thread pool, regions), more than decoding
and encoding a 256 x 256 tile (docs/performance.md). Boxes of up to `SMALL_READ_PIXELS` level pixels are
therefore decoded tile by tile into an array (`core.tiles`, `core.pyramid.is_small`), rendered here and JPEG-encoded by
imagecodecs. Every step reuses the lookup tables of the libvips steps and rounds as they do;
tests/core/test_render_array.py checks that both pipelines give identical pixels.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from tierserve.core.filters import colormap_lut, contrast_lut
from tierserve.core.orientation import orient_array
from tierserve.core.pyramid import PyramidFile
from tierserve.core.render import BITONAL_THRESHOLD, LUMA, RenderSpec
from tierserve.core.resample import resample_array
from tierserve.core.windowing import window_lut

Array = npt.NDArray[Any]
ArrayStep = Callable[[Array, RenderSpec], Array]
_UINT8_MAX = 255
_LUMA_WEIGHTS = np.array(LUMA[0], dtype=np.float32).astype(np.float64)


def area_average(pixels: Array, spec: RenderSpec) -> Array:
    """Mean of `shrink` x `shrink` blocks, rounded half to even (the libvips step: float shrink, rint)."""
    return pixels if spec.plan.shrink == 1 else block_mean(pixels, spec.plan.shrink)


def block_mean(pixels: Array, factor: int) -> Array:
    """Means of `factor` x `factor` blocks of unsigned integer pixels (height, width, bands), rounded
    half to even; a partial last row or column of blocks is dropped. `factor` is a power of two, > 1.

    Exact integer sums in `_sum_type`: the `factor` rows of each block first (whole rows at a time,
    vectorised), then its `factor` columns band by band (one strided pass each, into a contiguous
    array), then `_shift_half_to_even` with the row sums' buffer as scratch. Few, small temporaries:
    a freshly mapped page costs more than the arithmetic on it (timings: docs/performance.md,
    `python -m bench.stages`).
    """
    height, width, bands = pixels.shape[0] // factor, pixels.shape[1] // factor, pixels.shape[2]
    whole = pixels[: height * factor, : width * factor]
    rows: Array = whole[0::factor].astype(_sum_type(pixels.dtype, factor))
    for offset in range(1, factor):
        rows += whole[offset::factor]
    columns = rows.reshape(height, width, factor * bands)
    sums = np.empty((height, width, bands), rows.dtype)
    for band in range(bands):
        np.add(columns[..., band], columns[..., bands + band], out=sums[..., band])
        for offset in range(2, factor):
            sums[..., band] += columns[..., offset * bands + band]
    scratch = rows.reshape(-1)[: sums.size].reshape(sums.shape)
    return _shift_half_to_even(sums, 2 * (factor.bit_length() - 1), scratch).astype(pixels.dtype)


def _shift_half_to_even(sums: Array, shift: int, scratch: Array) -> Array:
    """``rint(sums / 2**shift)`` in place, as ``(sums + half - 1 + (q & 1)) >> shift`` with
    ``q = sums >> shift`` and ``half = 2**(shift - 1)``; `scratch` (shape and type of `sums`) is
    overwritten. Exact when ``sums + half`` fits the type.

    With ``sums = q 2**shift + r``: r < half gives q, r > half gives q + 1, r = half gives q + (q & 1),
    the even one of q and q + 1.
    """
    odd = np.right_shift(sums, shift, out=scratch)
    odd &= 1
    sums += odd
    sums += (1 << (shift - 1)) - 1
    sums >>= shift
    return sums


def _sum_type(dtype: np.dtype[Any], factor: int) -> type[np.unsignedinteger[Any]]:
    """The narrowest unsigned integer type that holds the sum of a `factor` x `factor` block of `dtype`
    samples plus half a block (the rounding): up to ``(max + 1) * factor**2 - 1``."""
    largest = (int(np.iinfo(dtype).max) + 1) * factor * factor - 1
    for kind in (np.uint16, np.uint32):
        if largest <= np.iinfo(kind).max:
            return kind
    return np.uint64


def orient(pixels: Array, spec: RenderSpec) -> Array:
    """Mirror, then turn clockwise."""
    return pixels if spec.orientation.identity else orient_array(pixels, spec.orientation)


def resample(pixels: Array, spec: RenderSpec) -> Array:
    """Area-average to the output size when it is no stored level."""
    mapping = spec.oriented_resample
    return pixels if mapping is None else resample_array(pixels, mapping)


def apply_window(pixels: Array, spec: RenderSpec) -> Array:
    """Each channel through its column of the window table (1 band: the red bounds)."""
    if spec.window is None:
        return pixels
    lut = window_lut(spec.window, 256 if pixels.dtype == np.uint8 else 65536)
    return _per_band(pixels, lut)


def to_rgb8(pixels: Array, spec: RenderSpec) -> Array:
    """Three 8-bit bands: deeper samples clipped to 0-255 (libvips' cast), grey replicated."""
    if spec.native:
        return pixels
    if pixels.dtype != np.uint8:
        pixels = np.minimum(pixels, _UINT8_MAX).astype(np.uint8)
    if pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    return pixels


def apply_contrast(pixels: Array, spec: RenderSpec) -> Array:
    """``contrast`` then ``rgb`` weights through one per-channel table."""
    if spec.contrast is None and spec.weights is None:
        return pixels
    return _per_band(pixels, contrast_lut(spec.contrast, spec.weights))


def apply_colormap(pixels: Array, spec: RenderSpec) -> Array:
    """The intensity (signal channel, or luma rounded half up) through the palette."""
    if spec.colormap is None:
        return pixels
    intensity = pixels[..., spec.intensity_channel] if spec.intensity_channel is not None else luma(pixels)
    return colormap_lut(spec.colormap)[intensity]


def luma(pixels: Array) -> Array:
    """The rounded luma of 8-bit RGB pixels as libvips computes it: single-precision weights, products
    summed exactly, a float32 result, + 0.5, truncated."""
    return ((pixels.astype(np.float64) @ _LUMA_WEIGHTS).astype(np.float32) + np.float32(0.5)).astype(np.uint8)


def apply_quality(pixels: Array, spec: RenderSpec) -> Array:
    """``gray``: the luma (one band); ``bitonal``: 255 where it reaches the threshold, else 0."""
    if spec.quality == "color" or spec.native:
        return pixels
    grey = luma(pixels)
    if spec.quality == "bitonal":
        grey = np.where(grey >= BITONAL_THRESHOLD, 255, 0).astype(np.uint8)
    return grey[..., None]


def _per_band(pixels: Array, lut: npt.NDArray[np.uint8]) -> Array:
    out = np.empty(pixels.shape, np.uint8)
    for band in range(pixels.shape[2]):
        out[..., band] = lut[:, band][pixels[..., band]]
    return out


PIPELINE: Sequence[ArrayStep] = (
    area_average,
    orient,
    resample,
    apply_window,
    to_rgb8,
    apply_contrast,
    apply_colormap,
    apply_quality,
)


def render_array(pyramid: PyramidFile, spec: RenderSpec) -> npt.NDArray[np.uint8]:
    """The output pixels of a small read (`is_small(spec.plan.box)`), shape (height, width, bands): 3
    bands, or 1 for the grey and bitonal qualities."""
    pixels = pyramid.read_array(spec.plan.level, spec.plan.box)
    for step in PIPELINE:
        pixels = step(pixels, spec)
    return np.ascontiguousarray(pixels)
