from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tierserve.core.tiers import (
    SMALLEST_LEVEL_SIDE,
    Box,
    Window,
    level_count,
    max_downsample,
    plan_read,
    resolve_window,
    tier_size,
)
from tierserve.errors import InvalidRequest, RegionOutsideImage

sizes = st.integers(min_value=1, max_value=200_000)


@given(sizes, sizes)
def test_level_count_stops_at_first_level_under_512(width: int, height: int) -> None:
    levels = level_count(width, height)
    last_w, last_h = width >> (levels - 1), height >> (levels - 1)
    assert last_w >= 1 and last_h >= 1
    if levels > 1:
        before_w, before_h = width >> (levels - 2), height >> (levels - 2)
        assert max(before_w, before_h) >= SMALLEST_LEVEL_SIDE
    assert max(last_w, last_h) < SMALLEST_LEVEL_SIDE or min(last_w, last_h) < 2


def test_level_count_examples() -> None:
    assert level_count(16000, 10000) == 6  # 16000, 8000, 4000, 2000, 1000, 500
    assert level_count(511, 300) == 1
    assert level_count(512, 300) == 2


@given(sizes, st.integers(0, 40))
def test_tier_size_is_floor(full: int, d: int) -> None:
    assert tier_size(full, d) == full // 2**d


@st.composite
def requests(draw: st.DrawFn) -> tuple[int, int, int, Window]:
    width = draw(st.integers(1, 70_000))
    height = draw(st.integers(1, 70_000))
    d = draw(st.integers(0, max_downsample(width, height)))
    window = Window(
        downsample=d,
        left=draw(st.integers(0, width + 10)),
        top=draw(st.integers(0, height + 10)),
        width=draw(st.integers(1, 5000)),
        height=draw(st.integers(1, 5000)),
    )
    return width, height, level_count(width, height), window


@given(requests())
def test_plan_read_is_the_clipped_window_on_the_tier_grid(request: tuple[int, int, int, Window]) -> None:
    width, height, levels, window = request
    d, s = window.downsample, 2**window.downsample
    tier = Box(0, 0, width // s, height // s)
    wanted = Box(window.left // s, window.top // s, window.width, window.height)
    expected = wanted.intersect(tier)
    if expected is None:
        with pytest.raises(RegionOutsideImage):
            plan_read(width, height, levels, window)
        return
    plan = plan_read(width, height, levels, window)
    assert plan.output == expected
    assert plan.level == min(d, levels - 1)
    assert plan.shrink == 2 ** (d - plan.level)
    assert plan.box == expected.scaled(plan.shrink)
    level_w, level_h = width >> plan.level, height >> plan.level
    assert plan.box.right <= level_w and plan.box.bottom <= level_h
    # the level box covers exactly the requested full-resolution area, snapped to the tier grid
    full = plan.box.scaled(2**plan.level)
    assert full.x == (window.left // s) * s and full.width == expected.width * s


def test_plan_read_rejects_downsample_without_pixels() -> None:
    with pytest.raises(InvalidRequest, match="largest downsample is 9"):
        plan_read(1000, 600, 2, Window(10, 0, 0, 1, 1))


def test_plan_read_outside_names_the_region() -> None:
    with pytest.raises(RegionOutsideImage, match="left=5000 top=0 width=10 height=10 at downsample=0"):
        plan_read(1000, 600, 2, Window(0, 5000, 0, 10, 10))


def test_tier_beyond_the_last_level_reads_the_last_level_and_shrinks() -> None:
    plan = plan_read(16000, 10000, 6, Window(7, 0, 0, 125, 78))
    assert plan.level == 5 and plan.shrink == 4
    assert plan.box == Box(0, 0, 500, 312)
    assert plan.output == Box(0, 0, 125, 78)


section = Box(100, 50, 1000, 601)


def test_resolve_window_defaults_to_the_section_at_the_tier() -> None:
    assert resolve_window(section, 0) == Window(0, 100, 50, 1000, 601)
    assert resolve_window(section, 3) == Window(3, 100, 50, 125, 75)
    assert resolve_window(section, 20) == Window(20, 100, 50, 1, 1)


def test_resolve_window_explicit_values_are_tier_pixels() -> None:
    assert resolve_window(section, 2, left=7, top=9, width=30, height=40) == Window(2, 7, 9, 30, 40)


def test_resolve_window_downsample_dimensions_divides_explicit_sizes() -> None:
    window = resolve_window(section, 2, width=1000, height=3, downsample_dimensions=True)
    assert window == Window(2, 100, 50, 250, 1)
    assert resolve_window(section, 2, downsample_dimensions=True) == Window(2, 100, 50, 250, 150)


def test_resolve_window_rejects_empty_sizes() -> None:
    with pytest.raises(InvalidRequest, match="width must be at least 1"):
        resolve_window(section, 0, width=0)


@given(st.integers(1, 10**6), st.integers(1, 10**6))
def test_max_downsample_leaves_a_pixel(width: int, height: int) -> None:
    d = max_downsample(width, height)
    assert width >> d >= 1 and height >> d >= 1
    assert width >> (d + 1) == 0 or height >> (d + 1) == 0
