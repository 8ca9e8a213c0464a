"""The render pipeline: an ordered list of steps from a stored pyramid to an 8-bit RGB image.

Order: read the planned box of the stored level -> area-average beyond the last stored level ->
window the channels (``range`` / equalization) -> make 8-bit, 3-band sRGB.  Every step is lazy:
libvips pulls pixels through the chain only when the encoder asks for them, a strip at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pyvips

from tierserve.core.pyramid import PyramidFile
from tierserve.core.tiers import ReadPlan
from tierserve.core.windowing import ChannelWindow, window_lut

_LUT_ENTRIES = {"uchar": 256, "ushort": 65536}


@dataclass(frozen=True, slots=True)
class RenderSpec:
    """Everything the pipeline needs besides the pixels: where to read and how to window."""

    plan: ReadPlan
    window: ChannelWindow | None


Step = Callable[[pyvips.Image, RenderSpec], pyvips.Image]


def read_box(image: pyvips.Image, spec: RenderSpec) -> pyvips.Image:
    """Crop the planned box (level pixels) out of the stored level."""
    box = spec.plan.box
    return image.crop(box.x, box.y, box.width, box.height)


def area_average(image: pyvips.Image, spec: RenderSpec) -> pyvips.Image:
    """Average `shrink` x `shrink` blocks for tiers beyond the last stored level."""
    factor = spec.plan.shrink
    return image if factor == 1 else image.shrink(factor, factor)


def apply_window(image: pyvips.Image, spec: RenderSpec) -> pyvips.Image:
    """Map each channel's [lower, upper] to [0, 255] through a lookup table (1-band: red bounds)."""
    if spec.window is None:
        return image
    fmt = str(image.format)
    if fmt not in _LUT_ENTRIES:
        raise ValueError(f"cannot window samples of format {fmt}")
    lut = window_lut(spec.window, _LUT_ENTRIES[fmt])
    if image.bands == 1:
        lut = lut[:, :1].copy()
    table = pyvips.Image.new_from_memory(lut.tobytes(), lut.shape[0], 1, lut.shape[1], "uchar")
    return image.maplut(table)


def to_rgb8(image: pyvips.Image, spec: RenderSpec) -> pyvips.Image:
    """Three 8-bit sRGB bands: grey is replicated, deeper samples are cast (after windowing)."""
    if str(image.format) != "uchar":
        image = image.cast("uchar")
    if image.bands == 1:
        image = image.bandjoin([image, image])
    return image.copy(interpretation="srgb")


PIPELINE: Sequence[Step] = (read_box, area_average, apply_window, to_rgb8)


def render(pyramid: PyramidFile, spec: RenderSpec) -> pyvips.Image:
    """Run the pipeline on the planned level of `pyramid`; returns a lazy 8-bit RGB image."""
    image = pyramid.level(spec.plan.level)
    for step in PIPELINE:
        image = step(image, spec)
    return image
