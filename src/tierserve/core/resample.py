"""Output sizes that are not stored levels: which level to read, and exact area averaging to the size.

Units: *full-resolution* pixels are pixels of level 0 (as in `core.tiers`); *box* pixels are pixels of
the box read from a stored level, box pixel j covering [j, j + 1). A `Resample` maps an area of the box,
given in box pixels that may be fractional, onto a whole number of output pixels.

The resampler is the area average: output pixel i of an axis covers the interval
``[start + i * length / count, start + (i + 1) * length / count)`` of the box and is the mean of the
box over it, each box pixel weighted by the length it overlaps (the part of an interval outside the
box is left out). It is the tiers' definition (the mean of the pixels a tier pixel covers) extended to
any scale: intensities are conserved (a microscopist's mean over a region is the same at every size),
values never leave the range of their neighbours (no ringing, no negative lobes at sharp label edges),
and the box filter removes most of what would alias; enlarging repeats each pixel over the area it
covers, so a zoomed-in view shows the acquired pixels rather than an interpolation. A pyramid level
at least as dense as the output is read (`plan_scaled_read`), so averaging is at most over 2 x 2 level
pixels below the last stored level and exact block means at the stored scales.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyvips

from tierserve.core import area_kernel
from tierserve.core.orientation import Orientation
from tierserve.core.tiers import Box, ReadPlan, Window, plan_read

Array = npt.NDArray[Any]
#: Samples a NumPy averaging strip holds for a box in memory: box rows gathered once per tap, or output
#: samples times column taps, whichever is more; about 8 bytes each, up to twice that with the other
#: temporaries. Small, so that they come from the allocator's free lists rather than fresh pages, whose
#: faults cost as much as the arithmetic (over bench.resample's thumbnails: none at 2**16, about 200
#: pages a thumbnail at 2**17 and more).
ARRAY_STRIP_SAMPLES = 1 << 16
#: The same for a libvips box, whose every strip is a libvips read with a fixed cost: fewer, larger
#: strips (some 8-16 MiB).
IMAGE_STRIP_SAMPLES = 1 << 20


@dataclass(frozen=True, slots=True)
class Resample:
    """Area-average ``[left, left + width) x [top, top + height)`` (box pixels, fractional allowed) onto
    `out_width` x `out_height` output pixels."""

    left: float
    top: float
    width: float
    height: float
    out_width: int
    out_height: int

    def oriented(self, orientation: Orientation, box_width: int, box_height: int) -> Resample:
        """The same mapping on the box after `orientation` (mirror, then clockwise quarter turns)."""
        r, bw, bh = self, box_width, box_height
        if orientation.mirror:
            r = Resample(bw - r.left - r.width, r.top, r.width, r.height, r.out_width, r.out_height)
        for _ in range(orientation.quarter_turns):  # (x, y) -> (bh - y, x) in a bw x bh box
            r = Resample(bh - r.top - r.height, r.left, r.height, r.width, r.out_height, r.out_width)
            bw, bh = bh, bw
        return r


def plan_scaled_read(
    image_width: int, image_height: int, levels: int, region: Box, width: int, height: int
) -> tuple[ReadPlan, Resample | None]:
    """Plan `region` (full-resolution pixels, inside the image) at `width` x `height` output pixels.

    The level read is the coarsest stored one at least as dense as the output on both axes (level 0
    when enlarging). When the output is exactly pixels of that level (the region starts on its grid and
    spans `width` x `height` of its pixels, or ends at the image edge where the level drops the
    partial block, as `core.tiers` does) the plan is the tier read and no resampling is needed;
    otherwise the region's box in that level is read and area-averaged to the size.
    """
    level = 0
    while level + 1 < levels and (width << (level + 1)) <= region.width and (height << (level + 1)) <= region.height:
        level += 1
    s = 1 << level
    if _exact(region.x, region.width, width, image_width, s) and _exact(
        region.y, region.height, height, image_height, s
    ):
        return plan_read(image_width, image_height, levels, Window(level, region.x, region.y, width, height)), None
    x0, y0 = region.x // s, region.y // s
    x1 = min(-(-region.right // s), image_width >> level)
    y1 = min(-(-region.bottom // s), image_height >> level)
    box = Box(x0, y0, x1 - x0, y1 - y0)
    resample = Resample(region.x / s - x0, region.y / s - y0, region.width / s, region.height / s, width, height)
    return ReadPlan(level=level, box=box, shrink=1, output=Box(0, 0, width, height)), resample


def _exact(start: int, length: int, count: int, extent: int, s: int) -> bool:
    """Whether `count` pixels of the level of scale `s` are exactly the interval [start, start + length)
    of an axis of `extent` full-resolution pixels (the level keeps floor(extent / s) of them)."""
    if start % s:
        return False
    return count * s == length or (start + length == extent and count == (extent // s) - start // s)


def resample_rows(
    rows: Callable[[int, int], Array], box_width: int, box_height: int, r: Resample, strip_samples: int
) -> Array:
    """Area-average a box of `box_width` x `box_height` pixels whose rows [y0, y1) `rows(y0, y1)` returns
    as (rows, box_width, bands) unsigned integers; the result has their dtype, rounded half to even.

    Separable: each output row is the weighted sum of its tapped box rows (`_axis_weights`), then each
    output column of its tapped columns, sums in float64 for every depth (float32 is off by about
    2**-16, which rounds a mean that close to a half to the wrong side). The compiled kernel
    (`core.area_kernel`) does both passes when it was built, else NumPy (`_numpy_strips`). Works in
    strips of output rows, so that at most about `strip_samples` samples are held at once besides the
    output: the box rows a strip taps, and NumPy's temporaries.
    """
    taps_x, weights_x = _axis_weights(r.left, r.width, r.out_width, box_width)
    taps_y, weights_y = _axis_weights(r.top, r.height, r.out_height, box_height)
    first = rows(0, 0)
    dtype, bands = first.dtype, first.shape[2]
    out = np.empty((r.out_height, r.out_width, bands), dtype)
    if area_kernel.supports(dtype):
        average: StripAverage = area_kernel.StripKernel(taps_x, weights_x, box_width, bands, dtype)
        held = box_width * bands * taps_y.shape[1]
    else:
        average = _numpy_strips(taps_x, weights_x, bands)
        held = max(box_width * bands * taps_y.shape[1], r.out_width * bands * taps_x.shape[1])
    step = max(1, strip_samples // held)
    for o0 in range(0, r.out_height, step):
        o1 = min(o0 + step, r.out_height)
        taps = taps_y[o0:o1]
        y0, y1 = int(taps[0, 0]), int(taps[-1, -1]) + 1  # taps ascend along both axes
        average(rows(y0, y1), y0, taps, weights_y[o0:o1], out[o0:o1])
    return out


#: Averages one strip: (box rows from y0, y0, the strip's row taps and weights, its output rows).
StripAverage = Callable[[Array, int, Array, Array, Array], None]


def _numpy_strips(taps_x: Array, weights_x: Array, bands: int) -> StripAverage:
    """`resample_rows`' strips with NumPy: the vertical sums as one `np.einsum` over the taps, the
    columns gathered with one `np.take` of flat sample indices (each band its own column) and summed
    with another (no temporaries per tap)."""
    out_samples = taps_x.shape[0] * bands
    # (column taps, out_samples): the sample of a box row that each tap of each output sample reads
    columns = (taps_x.T[:, :, None] * bands + np.arange(bands)).reshape(taps_x.shape[1], out_samples)
    weights_h = np.repeat(weights_x.T, bands, axis=1)

    def average(block: Array, y0: int, taps: Array, weights: Array, out: Array) -> None:
        samples = block.reshape(block.shape[0], -1)
        vertical = np.einsum("tnk,tn->nk", samples[taps.T - y0], weights.T, dtype=np.float64)
        both = np.einsum("nmk,mk->nk", np.take(vertical, columns, axis=1), weights_h)
        # a weighted mean of samples in range stays within half a unit of it: rint casts into range
        np.rint(both, out=out.reshape(len(out), out_samples), casting="unsafe")

    return average


def resample_array(pixels: Array, r: Resample) -> Array:
    """`resample_rows` of an in-memory (height, width, bands) box: one strip when the compiled kernel
    averages (it makes no temporaries), strips of `ARRAY_STRIP_SAMPLES` with NumPy."""
    strip_samples = sys.maxsize if area_kernel.supports(pixels.dtype) else ARRAY_STRIP_SAMPLES
    return resample_rows(lambda y0, y1: pixels[y0:y1], pixels.shape[1], pixels.shape[0], r, strip_samples)


def resample_image(image: pyvips.Image, r: Resample) -> pyvips.Image:
    """`resample_rows` of a libvips box: read strip by strip, the output built in memory."""

    def rows(y0: int, y1: int) -> Array:
        if y1 <= y0:
            return np.empty((0, image.width, image.bands), _NUMPY_FORMATS[str(image.format)])
        strip: Array = image.crop(0, y0, image.width, y1 - y0).numpy()
        return strip.reshape(y1 - y0, image.width, image.bands)  # numpy() of a 1x1 one-band image is 0-d

    out = resample_rows(rows, image.width, image.height, r, IMAGE_STRIP_SAMPLES)
    return pyvips.Image.new_from_array(out).copy(interpretation=image.interpretation)


_NUMPY_FORMATS = {"uchar": np.uint8, "ushort": np.uint16}


def _axis_weights(start: float, length: float, count: int, size: int) -> tuple[Array, Array]:
    """Taps (count, n) into an axis of `size` pixels and their weights for `count` output pixels that
    cover [start, start + length): each weight is the overlap with the tap's pixel over the covered
    length inside the axis. An output pixel wholly outside the axis takes the nearest pixel. Taps
    ascend along both axes (the last ones of a row repeat the last pixel, weight 0)."""
    edges = np.clip(start + np.arange(count + 1, dtype=np.float64) * (length / count), 0.0, size)
    low, high = edges[:-1, None], edges[1:, None]
    first = np.minimum(np.floor(edges[:-1]), size - 1)
    width = max(1, int(np.max(np.ceil(edges[1:]) - first)))
    taps = first.astype(np.intp)[:, None] + np.arange(width, dtype=np.intp)
    overlap = np.minimum(high, taps + 1) - np.maximum(low, taps)
    np.maximum(overlap, 0.0, out=overlap)
    np.minimum(taps, size - 1, out=taps)
    total = overlap.sum(axis=1, keepdims=True)
    outside = total[:, 0] == 0
    if outside.any():
        overlap[outside, 0] = 1.0
        total[outside] = 1.0
    return taps, overlap / total
