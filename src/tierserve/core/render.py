"""The render pipeline: one ordered list of steps from a stored pyramid to the output image.

Order: read the planned box of the stored level (`PyramidFile.read`) -> area-average beyond the last stored level ->
mirror and turn (`core.orientation`) -> area-average to a size that is no stored level (`core.resample`) ->
window the channels (``range`` / equalization) -> make 8-bit, 3-band sRGB -> contrast and channel
weights (``contrast``, ``rgb``) -> ``colormap`` -> grey or bitonal quality.  A step whose option is absent
passes the image through; with `native` (lossless TIFF output without display options) the samples stay
as stored. Turning before resampling keeps the read random-access and the resampled image the last
thing built in memory; both commute with every later step, which works pixel by pixel.
Every step but resampling is lazy: libvips pulls pixels through the chain only when the encoder asks
for them; a resampled output is built in memory (`core.resample`), its read streamed strip by strip.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import pyvips

from tierserve.core.filters import ChannelWeights, Colormap, Contrast, colormap_lut, contrast_lut
from tierserve.core.orientation import UPRIGHT, Orientation, orient_image
from tierserve.core.pyramid import PyramidFile
from tierserve.core.resample import Resample, resample_image
from tierserve.core.tiers import ReadPlan
from tierserve.core.windowing import ChannelWindow, window_lut

_LUT_ENTRIES = {"uchar": 256, "ushort": 65536}
#: Rec. 601 luma, the intensity of an RGB layer for ``colormap`` and of the grey and bitonal qualities.
LUMA = [[0.299, 0.587, 0.114]]
#: Colour of the output: "color" keeps the RGB image, "gray" is its luma (one band), "bitonal" is
#: 255 where the luma is at least `BITONAL_THRESHOLD`, else 0 (one band).
Quality = Literal["color", "gray", "bitonal"]
BITONAL_THRESHOLD = 128


@dataclass(frozen=True, slots=True)
class RenderSpec:
    """Everything the pipeline needs besides the pixels: where to read, how to window and filter.

    `intensity_channel` is the band ``colormap`` reads in a 3-band layer (the signal channel of
    fluorescence data); None means the luma of the RGB image.  `native` keeps stored samples.
    `orientation` mirrors and turns the read box; `resample` (given for the unturned box) maps it to an
    output size that is no stored level; `quality` is the output's colour.
    """

    plan: ReadPlan
    window: ChannelWindow | None
    contrast: Contrast | None = None
    weights: ChannelWeights | None = None
    colormap: Colormap | None = None
    intensity_channel: int | None = None
    native: bool = False
    orientation: Orientation = UPRIGHT
    resample: Resample | None = None
    quality: Quality = "color"

    @property
    def stored_pixels(self) -> bool:
        """Whether the output is the read box's stored pixels as they are, as display values: no area
        average, turn, resample, window, filter or colour change, not `native` (what a stored 8-bit JPEG
        tile can answer; deeper layers are always windowed)."""
        return (
            not self.native
            and self.plan.shrink == 1
            and self.orientation.identity
            and self.resample is None
            and self.window is None
            and self.contrast is None
            and self.weights is None
            and self.colormap is None
            and self.quality == "color"
        )

    @property
    def oriented_resample(self) -> Resample | None:
        """`resample` on the box after `orientation`."""
        if self.resample is None:
            return None
        box = self.plan.box
        return self.resample.oriented(self.orientation, box.width, box.height)


Step = Callable[[pyvips.Image, RenderSpec], pyvips.Image]


def area_average(image: pyvips.Image, spec: RenderSpec) -> pyvips.Image:
    """Average `shrink` x `shrink` blocks for tiers beyond the last stored level (exact mean, rounded)."""
    factor = spec.plan.shrink
    if factor == 1:
        return image
    return image.cast("float").shrink(factor, factor).rint().cast(image.format)


def orient(image: pyvips.Image, spec: RenderSpec) -> pyvips.Image:
    """Mirror, then turn clockwise (`core.orientation`)."""
    return image if spec.orientation.identity else orient_image(image, spec.orientation)


def resample(image: pyvips.Image, spec: RenderSpec) -> pyvips.Image:
    """Area-average to the output size (`core.resample`) when it is no stored level."""
    mapping = spec.oriented_resample
    return image if mapping is None else resample_image(image, mapping)


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
    channel = spec.intensity_channel
    intensity = image.extract_band(channel) if channel is not None else luma(image)
    return intensity.maplut(_table(colormap_lut(spec.colormap))).copy(interpretation="srgb")


def luma(image: pyvips.Image) -> pyvips.Image:
    """The Rec. 601 luma of an 8-bit RGB image, rounded half up, as one 8-bit band."""
    return image.recomb(LUMA).linear(1.0, 0.5).cast("uchar")


def apply_quality(image: pyvips.Image, spec: RenderSpec) -> pyvips.Image:
    """``gray``: the luma; ``bitonal``: 255 where the luma reaches `BITONAL_THRESHOLD`, else 0."""
    if spec.quality == "color" or spec.native:
        return image
    grey = luma(image)
    if spec.quality == "bitonal":
        grey = (grey >= BITONAL_THRESHOLD).cast("uchar")  # libvips relations give 255 or 0
    return grey.copy(interpretation="b-w")


PIPELINE: Sequence[Step] = (
    area_average,
    orient,
    resample,
    apply_window,
    to_rgb8,
    apply_contrast,
    apply_colormap,
    apply_quality,
)


def render(pyramid: PyramidFile, spec: RenderSpec) -> pyvips.Image:
    """Run the pipeline on the planned box of `pyramid`; returns a lazy 8-bit RGB image."""
    image = pyramid.read(spec.plan.level, spec.plan.box)
    for step in PIPELINE:
        image = step(image, spec)
    return image
