"""The render pipeline: one ordered list of steps from a stored pyramid to the output image.

Order: read the planned box of the stored level (`PyramidFile.read`) -> area-average beyond the last stored level ->
window the channels (``range`` / equalization) -> make 8-bit, 3-band sRGB -> contrast and channel
weights (``contrast``, ``rgb``) -> ``colormap``.  A step whose option is absent passes the image
through; with `native` (lossless TIFF output without display options) the samples stay as stored.
Every step is lazy: libvips pulls pixels through the chain only when the encoder asks for them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyvips

from tierserve.core.filters import ChannelWeights, Colormap, Contrast, colormap_lut, contrast_lut
from tierserve.core.pyramid import PyramidFile
from tierserve.core.tiers import ReadPlan
from tierserve.core.windowing import ChannelWindow, window_lut

_LUT_ENTRIES = {"uchar": 256, "ushort": 65536}
#: Rec. 601 luma, the intensity of an RGB layer for ``colormap``.
LUMA = [[0.299, 0.587, 0.114]]


@dataclass(frozen=True, slots=True)
class RenderSpec:
    """Everything the pipeline needs besides the pixels: where to read, how to window and filter.

    `intensity_channel` is the band ``colormap`` reads in a 3-band layer (the signal channel of
    fluorescence data); None means the luma of the RGB image.  `native` keeps stored samples.
    """

    plan: ReadPlan
    window: ChannelWindow | None
    contrast: Contrast | None = None
    weights: ChannelWeights | None = None
    colormap: Colormap | None = None
    intensity_channel: int | None = None
    native: bool = False


Step = Callable[[pyvips.Image, RenderSpec], pyvips.Image]


def area_average(image: pyvips.Image, spec: RenderSpec) -> pyvips.Image:
    """Average `shrink` x `shrink` blocks for tiers beyond the last stored level (exact mean, rounded)."""
    factor = spec.plan.shrink
    if factor == 1:
        return image
    return image.cast("float").shrink(factor, factor).rint().cast(image.format)


def apply_window(image: pyvips.Image, spec: RenderSpec) -> pyvips.Image:
    """Map each channel's [lower, upper] to [0, 255] through a lookup table (1-band: red bounds)."""
    if spec.window is None:
        return image
    fmt = str(image.format)
    if fmt not in _LUT_ENTRIES:
        raise ValueError(f"cannot window samples of format {fmt}")
    lut = window_lut(spec.window, _LUT_ENTRIES[fmt])
    return image.maplut(_table(lut[:, :1] if image.bands == 1 else lut))


def _table(lut: npt.NDArray[np.uint8]) -> pyvips.Image:
    """A libvips lookup table from an (entries, bands) uint8 array."""
    lut = np.ascontiguousarray(lut)
    return pyvips.Image.new_from_memory(lut.tobytes(), lut.shape[0], 1, lut.shape[1], "uchar")


def to_rgb8(image: pyvips.Image, spec: RenderSpec) -> pyvips.Image:
    """Three 8-bit sRGB bands: grey is replicated, deeper samples are cast (after windowing)."""
    if spec.native:
        return image
    if str(image.format) != "uchar":
        image = image.cast("uchar")
    if image.bands == 1:
        image = image.bandjoin([image, image])
    return image.copy(interpretation="srgb")


def apply_contrast(image: pyvips.Image, spec: RenderSpec) -> pyvips.Image:
    """``contrast`` then ``rgb`` weights, fused into one per-channel lookup table."""
    if spec.contrast is None and spec.weights is None:
        return image
    return image.maplut(_table(contrast_lut(spec.contrast, spec.weights))).copy(interpretation="srgb")


def apply_colormap(image: pyvips.Image, spec: RenderSpec) -> pyvips.Image:
    """Reduce to one intensity (signal channel or luma), then look the palette colour up."""
    if spec.colormap is None:
        return image
    if spec.intensity_channel is not None:
        intensity = image.extract_band(spec.intensity_channel)
    else:
        intensity = image.recomb(LUMA).linear(1.0, 0.5).cast("uchar")  # rounded
    return intensity.maplut(_table(colormap_lut(spec.colormap))).copy(interpretation="srgb")


PIPELINE: Sequence[Step] = (area_average, apply_window, to_rgb8, apply_contrast, apply_colormap)


def render(pyramid: PyramidFile, spec: RenderSpec) -> pyvips.Image:
    """Run the pipeline on the planned box of `pyramid`; returns a lazy 8-bit RGB image."""
    image = pyramid.read(spec.plan.level, spec.plan.box)
    for step in PIPELINE:
        image = step(image, spec)
    return image
