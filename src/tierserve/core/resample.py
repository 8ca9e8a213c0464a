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

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyvips

from tierserve.core.orientation import Orientation
from tierserve.core.tiers import Box, ReadPlan, Window, plan_read

Array = npt.NDArray[Any]
#: Box samples (float32 or float64) an averaging pass holds at once: at most about 16 MiB.
STRIP_SAMPLES = 2 * 1024 * 1024


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


def resample_rows(rows: Callable[[int, int], Array], box_width: int, box_height: int, r: Resample) -> Array:
    """Area-average a box of `box_width` x `box_height` pixels whose rows [y0, y1) `rows(y0, y1)` returns
    as (rows, box_width, bands) unsigned integers; the result has their dtype, rounded half to even.

    Works in strips of output rows, so at most about `STRIP_SAMPLES` float samples are held at once
    besides the output.
    """
    taps_x, weights_x = _axis_weights(r.left, r.width, r.out_width, box_width)
    taps_y, weights_y = _axis_weights(r.top, r.height, r.out_height, box_height)
    first = rows(0, 0)
    dtype, bands = first.dtype, first.shape[2]
    out = np.empty((r.out_height, r.out_width, bands), dtype)
    top = np.iinfo(dtype).max
    # float32 holds 8-bit sums exactly to 1/65536 and is 4x faster here; deeper samples need float64.
    accumulate = np.float32 if dtype == np.uint8 else np.float64
    weights_x, weights_y = weights_x.astype(accumulate), weights_y.astype(accumulate)
    per_row = max(1, box_width * bands * taps_y.shape[1])
    step = max(1, STRIP_SAMPLES // per_row)
    for o0 in range(0, r.out_height, step):
        o1 = min(o0 + step, r.out_height)
        taps = taps_y[o0:o1]
        y0, y1 = int(taps.min()), int(taps.max()) + 1
        block = rows(y0, y1)
        vertical = _weigh(block, taps - y0, weights_y[o0:o1], axis=0, dtype=accumulate)
        both = _weigh(vertical, taps_x, weights_x, axis=1, dtype=accumulate)
        out[o0:o1] = np.clip(np.rint(both), 0, top)
    return out


def resample_array(pixels: Array, r: Resample) -> Array:
    """`resample_rows` of an in-memory (height, width, bands) box."""
    return resample_rows(lambda y0, y1: pixels[y0:y1], pixels.shape[1], pixels.shape[0], r)


def resample_image(image: pyvips.Image, r: Resample) -> pyvips.Image:
    """`resample_rows` of a libvips box: read strip by strip, the output built in memory."""

    def rows(y0: int, y1: int) -> Array:
        if y1 <= y0:
            return np.empty((0, image.width, image.bands), _NUMPY_FORMATS[str(image.format)])
        strip: Array = image.crop(0, y0, image.width, y1 - y0).numpy()
        return strip.reshape(strip.shape[0], strip.shape[1], image.bands)

    out = resample_rows(rows, image.width, image.height, r)
    return pyvips.Image.new_from_array(out).copy(interpretation=image.interpretation)


_NUMPY_FORMATS = {"uchar": np.uint8, "ushort": np.uint16}


def _axis_weights(start: float, length: float, count: int, size: int) -> tuple[Array, Array]:
    """Taps (count, n) into an axis of `size` pixels and their weights for `count` output pixels that
    cover [start, start + length): each weight is the overlap with the tap's pixel over the covered
    length inside the axis. An output pixel wholly outside the axis takes the nearest pixel."""
    edges = start + np.arange(count + 1, dtype=np.float64) * (length / count)
    low, high = edges[:-1, None], edges[1:, None]
    first = np.floor(edges[:-1]).astype(np.intp)
    width = int(np.max(np.ceil(edges[1:]) - np.floor(edges[:-1])))
    taps = first[:, None] + np.arange(max(width, 1), dtype=np.intp)
    overlap = np.clip(np.minimum(high, taps + 1) - np.maximum(low, taps), 0.0, None)
    overlap[(taps < 0) | (taps >= size)] = 0.0
    taps = np.clip(taps, 0, size - 1)
    total = overlap.sum(axis=1, keepdims=True)
    outside = total[:, 0] == 0
    overlap[outside, 0] = 1.0
    total[outside] = 1.0
    return taps, overlap / total


def _weigh(block: Array, taps: Array, weights: Array, axis: int, dtype: type[np.floating[Any]]) -> Array:
    """Sum over taps of weight x the tapped slices of `block` along `axis` (0: rows, 1: columns), in `dtype`,
    accumulated in place."""
    result: Array | None = None
    for t in range(taps.shape[1]):
        tapped = block[taps[:, t]] if axis == 0 else block[:, taps[:, t]]
        w = weights[:, t, None, None] if axis == 0 else weights[None, :, t, None]
        if result is None:
            result = np.multiply(tapped, w, dtype=dtype)
        else:
            result += tapped * w
    assert result is not None
    return result
