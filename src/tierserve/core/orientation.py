"""Mirroring and quarter turns of a rendered image (the IIIF ``rotation`` parameter: ``!`` and 0/90/180/270).

The image is first mirrored (reflected on its vertical axis: left and right swap), then turned clockwise
by `quarter_turns` x 90 degrees. Both are exact pixel moves, no resampling.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyvips

_VIPS_TURNS = {1: "d90", 2: "d180", 3: "d270"}


@dataclass(frozen=True, slots=True)
class Orientation:
    """`mirror` (left-right reflection, applied first), then `quarter_turns` clockwise turns (0-3)."""

    quarter_turns: int = 0
    mirror: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.quarter_turns <= 3:
            raise ValueError(f"quarter_turns must be 0-3, got {self.quarter_turns}")

    @property
    def identity(self) -> bool:
        return self.quarter_turns == 0 and not self.mirror

    @property
    def swaps_axes(self) -> bool:
        """Whether width and height trade places (a quarter or three-quarter turn)."""
        return self.quarter_turns % 2 == 1


#: As stored: no mirroring, no turn.
UPRIGHT = Orientation()


def orient_image(image: pyvips.Image, orientation: Orientation) -> pyvips.Image:
    """`image` mirrored and turned as `orientation` says (lazy libvips operations)."""
    if orientation.mirror:
        image = image.fliphor()
    if orientation.quarter_turns:
        image = image.rot(_VIPS_TURNS[orientation.quarter_turns])
    return image


def orient_array(pixels: npt.NDArray[Any], orientation: Orientation) -> npt.NDArray[Any]:
    """`orient_image` for a (height, width, bands) array."""
    if orientation.mirror:
        pixels = pixels[:, ::-1]
    if orientation.quarter_turns:
        pixels = np.rot90(pixels, k=-orientation.quarter_turns, axes=(0, 1))
    return pixels
