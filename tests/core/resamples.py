"""Hypothesis strategies of area-average mappings for the resampling tests."""

from __future__ import annotations

from hypothesis import strategies as st

from tierserve.core.resample import Resample


@st.composite
def eighths(draw: st.DrawFn, box_width: int, box_height: int, max_out: int) -> Resample:
    """A `Resample` of a `box_width` x `box_height` box whose area starts and ends at eighths of a pixel
    (a level's box holds a region at multiples of 1 / 2**level), up to a pixel past the box (the
    partial block a level drops), to 1-`max_out` output pixels a side: shrinking and enlarging."""
    x, y = draw(st.integers(0, 8 * (box_width - 20))), draw(st.integers(0, 8 * (box_height - 20)))
    w, h = draw(st.integers(1, 8 * (box_width + 1) - x)), draw(st.integers(1, 8 * (box_height + 1) - y))
    return Resample(x / 8, y / 8, w / 8, h / 8, draw(st.integers(1, max_out)), draw(st.integers(1, max_out)))
