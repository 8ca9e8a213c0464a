"""The display filters after windowing, as 256-entry lookup tables on 8-bit values.

All work on the 0-1 scale v = value / 255 of the windowed 8-bit image:

- ``contrast=gain,bias``: v' = clip(gain * v + bias, 0, 1), per channel;
- ``rgb=r,g,b``: channel c is multiplied by its weight (0-1) after contrast;
- ``colormap``: the image is first reduced to one intensity I (0-255; see `Colormap`), then
  t = clip((I - input_min) / (input_max - input_min), 0, 1); t < lower_threshold gives black;
  otherwise the colour is gain * palette[round(255 t)] + (1 - gain) * 255 t (gain is the palette's
  opacity over the grey intensity). A bare palette name means gain 1, threshold 0, range 0-255.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tierserve.core.palettes import palette_table
from tierserve.errors import InvalidRequest


@dataclass(frozen=True, slots=True)
class Contrast:
    gain: float
    bias: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.gain) and 0 <= self.gain <= 100):
            raise InvalidRequest(f"contrast gain must be between 0 and 100, got {self.gain}")
        if not (math.isfinite(self.bias) and -1 <= self.bias <= 1):
            raise InvalidRequest(f"contrast bias must be between -1 and 1, got {self.bias}")


@dataclass(frozen=True, slots=True)
class ChannelWeights:
    red: float
    green: float
    blue: float

    def __post_init__(self) -> None:
        for name, value in (("red", self.red), ("green", self.green), ("blue", self.blue)):
            if not (math.isfinite(value) and 0 <= value <= 1):
                raise InvalidRequest(f"rgb {name} weight must be between 0 and 1, got {value}")


@dataclass(frozen=True, slots=True)
class Colormap:
    """gain (opacity 0-1), lower_threshold (0-1), input_min < input_max (intensity scale 0-255), palette id."""

    gain: float
    lower_threshold: float
    input_min: float
    input_max: float
    palette: int

    def __post_init__(self) -> None:
        if not (math.isfinite(self.gain) and 0 <= self.gain <= 1):
            raise InvalidRequest(f"colormap gain must be between 0 and 1, got {self.gain}")
        if not (math.isfinite(self.lower_threshold) and 0 <= self.lower_threshold <= 1):
            raise InvalidRequest(f"colormap lower_threshold must be between 0 and 1, got {self.lower_threshold}")
        if not (math.isfinite(self.input_min) and math.isfinite(self.input_max)) or not (
            0 <= self.input_min < self.input_max <= 65535
        ):
            raise InvalidRequest(
                f"colormap input_min and input_max must satisfy 0 <= min < max <= 65535, "
                f"got {self.input_min},{self.input_max}"
            )

    @classmethod
    def plain(cls, palette: int) -> Colormap:
        """A bare palette: full opacity, no threshold, intensities 0-255."""
        return cls(1.0, 0.0, 0.0, 255.0, palette)


def contrast_lut(contrast: Contrast | None, weights: ChannelWeights | None) -> npt.NDArray[np.uint8]:
    """A (256, 3) table applying contrast, then channel weights."""
    v = np.arange(256, dtype=np.float64) / 255.0
    if contrast is not None:
        v = np.clip(contrast.gain * v + contrast.bias, 0.0, 1.0)
    factors = (1.0, 1.0, 1.0) if weights is None else (weights.red, weights.green, weights.blue)
    table = np.stack([v * f for f in factors], axis=-1)
    return np.floor(table * 255.0 + 0.5).astype(np.uint8)


def colormap_lut(colormap: Colormap) -> npt.NDArray[np.uint8]:
    """A (256, 3) table from intensity 0-255 to the colour-mapped RGB value."""
    intensity = np.arange(256, dtype=np.float64)
    t = np.clip((intensity - colormap.input_min) / (colormap.input_max - colormap.input_min), 0.0, 1.0)
    colours = palette_table(colormap.palette)[np.floor(t * 255.0 + 0.5).astype(int)].astype(np.float64)
    grey = (t * 255.0)[:, np.newaxis]
    mixed = colormap.gain * colours + (1.0 - colormap.gain) * grey
    mixed[t < colormap.lower_threshold] = 0.0
    table: npt.NDArray[np.uint8] = np.clip(np.floor(mixed + 0.5), 0, 255).astype(np.uint8)
    return table
