"""Channel windowing: map native sample values linearly to 0-255 with clipping (the `range` filter).

For channel c with window [lo_c, hi_c] on the layer's native scale (0-4095 for 12-bit data):
``out = clip(floor((v - lo_c) * 255 / (hi_c - lo_c) + 0.5), 0, 255)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from tierserve.errors import InvalidRequest

#: Largest value accepted in a window bound (the 16-bit sample scale).
MAX_SAMPLE = 65535


@dataclass(frozen=True, slots=True)
class ChannelWindow:
    """Per-channel (lower, upper) bounds in red, green, blue order, on the native sample scale."""

    bounds: tuple[tuple[int, int], tuple[int, int], tuple[int, int]]

    def __post_init__(self) -> None:
        for name, (lo, hi) in zip(("red", "green", "blue"), self.bounds, strict=True):
            if not 0 <= lo < hi <= MAX_SAMPLE:
                raise InvalidRequest(f"range for {name} must satisfy 0 <= lower < upper <= {MAX_SAMPLE}, got {lo},{hi}")

    @classmethod
    def from_flat(cls, values: tuple[int, int, int, int, int, int]) -> ChannelWindow:
        """From ``rl, ru, gl, gu, bl, bu``."""
        rl, ru, gl, gu, bl, bu = values
        return cls(((rl, ru), (gl, gu), (bl, bu)))

    @classmethod
    def full_scale(cls, bits: int) -> ChannelWindow:
        """The identity window of a `bits`-deep layer: [0, 2**bits - 1] on every channel."""
        top = (1 << bits) - 1
        return cls(((0, top), (0, top), (0, top)))


def window_lut(window: ChannelWindow, entries: int) -> npt.NDArray[np.uint8]:
    """A lookup table of shape (entries, 3): row v holds the windowed value of sample v per channel."""
    return _cached_lut(window, entries)


@lru_cache(maxsize=64)
def _cached_lut(window: ChannelWindow, entries: int) -> npt.NDArray[np.uint8]:
    values = np.arange(entries, dtype=np.float64)
    columns = [np.clip(np.floor((values - lo) * 255.0 / (hi - lo) + 0.5), 0, 255) for lo, hi in window.bounds]
    lut = np.stack(columns, axis=-1).astype(np.uint8)
    lut.setflags(write=False)
    return lut
