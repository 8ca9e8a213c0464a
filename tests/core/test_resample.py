"""Area averaging to sizes that are no stored level: pixels against an independent computation, the
level it reads, and mirroring and turning before it."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from fractions import Fraction

import numpy as np
import numpy.typing as npt
import pytest
import pyvips
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.core.resamples import eighths
from tests.images import multiscale_pattern, tier
from tierserve.core import area_kernel
from tierserve.core.orientation import Orientation, orient_array
from tierserve.core.render_array import block_mean
from tierserve.core.resample import Resample, plan_scaled_read, resample_array, resample_image, resample_rows
from tierserve.core.tiers import Box, level_count

Array = npt.NDArray[np.float64]


def area_mean(full: npt.NDArray[np.int64], x: int, y: int, w: int, h: int, out_w: int, out_h: int) -> Array:
    """The region [x, x+w) x [y, y+h) at out_w x out_h: each output pixel the integral of the
    piecewise-constant image over its area (cumulative sums, exact rational edges) over that area."""
    region = np.asarray(full[y : y + h, x : x + w], dtype=np.float64)
    return _integral_means(_integral_means(region, out_h, axis=0), out_w, axis=1)


def _integral_means(values: Array, count: int, axis: int) -> Array:
    values = np.moveaxis(values, axis, 0)
    n = values.shape[0]
    sums = np.concatenate([np.zeros((1, *values.shape[1:])), np.cumsum(values, axis=0)])

    def integral(t: Fraction) -> Array:
        whole = math.floor(t)
        return sums[n] if whole >= n else sums[whole] + float(t - whole) * values[whole]

    edges = [Fraction(i * n, count) for i in range(count + 1)]
    means = [(integral(b) - integral(a)) / float(b - a) for a, b in itertools.pairwise(edges)]
    return np.moveaxis(np.stack(means), 0, axis)


def supersampled_mean(full: npt.NDArray[np.int64], out_w: int, out_h: int) -> Array:
    """A second reference for small arrays: each pixel repeated out_w (out_h) times makes every output
    interval a whole number of samples, whose plain mean is the area average."""
    h, w = full.shape[:2]
    rows = np.repeat(full.astype(np.float64), out_h, axis=0).reshape(out_h, h, w, -1).mean(axis=1)
    return np.repeat(rows, out_w, axis=1).reshape(out_h, out_w, w, -1).mean(axis=2)


def exact_area_mean(full: npt.NDArray[np.int64], r: Resample) -> Array:
    """`Resample`'s definition from its float fields' exact values (edges as fractions, sums in float64
    over the piecewise-constant box): each output pixel the integral over the part of its area inside
    the box over that part's area; one wholly outside the box takes the nearest pixel."""
    rows = _clipped_means(np.asarray(full, dtype=np.float64), Fraction(r.top), Fraction(r.height), r.out_height, 0)
    return _clipped_means(rows, Fraction(r.left), Fraction(r.width), r.out_width, axis=1)


def _clipped_means(values: Array, start: Fraction, length: Fraction, count: int, axis: int) -> Array:
    """Along `axis`, output pixel i the mean over [start + i * length / count, start + (i + 1) * length /
    count) clipped to the axis: the pixels it covers summed directly, the two it cuts weighted by the part
    covered (no differences of long prefix sums, which would lose digits over short intervals)."""
    values = np.moveaxis(values, axis, 0)
    n = values.shape[0]
    means = []
    for i in range(count):
        low, high = start + i * length / count, start + (i + 1) * length / count
        a, b = min(max(low, Fraction(0)), Fraction(n)), min(max(high, Fraction(0)), Fraction(n))
        first, last = math.floor(a), math.floor(b)
        if b <= a:  # wholly outside: the nearest pixel
            means.append(values[min(max(math.floor(low), 0), n - 1)])
        elif first == last:  # inside one pixel
            means.append(values[first])
        else:
            total = float(first + 1 - a) * values[first] + values[first + 1 : last].sum(axis=0)
            if last < n:
                total = total + float(b - last) * values[last]
            means.append(total / float(b - a))
    return np.moveaxis(np.stack(means), 0, axis)


@pytest.fixture(scope="module", autouse=True, params=["compiled", "numpy"])
def averager(request: pytest.FixtureRequest) -> Iterator[str]:
    """Every test of this module with the compiled kernel (`core/area.c`), then with NumPy."""
    with pytest.MonkeyPatch.context() as patch:
        if request.param == "numpy":
            patch.setattr(area_kernel, "supports", lambda dtype: False)
        yield request.param


@pytest.fixture(scope="module")
def pattern() -> npt.NDArray[np.int64]:
    return multiscale_pattern(240, 320, 3, 4095, seed=21)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_area_average_equals_supersampled_means(pattern: npt.NDArray[np.int64], data: st.DataObject) -> None:
    x, y = data.draw(st.integers(0, 300)), data.draw(st.integers(0, 220))
    w, h = data.draw(st.integers(1, 320 - x)), data.draw(st.integers(1, 240 - y))
    out_w, out_h = data.draw(st.integers(1, 90)), data.draw(st.integers(1, 90))
    out = resample_array(pattern.astype(np.uint16), Resample(x, y, w, h, out_w, out_h))
    expected = area_mean(pattern, x, y, w, h, out_w, out_h)
    assert out.shape == (out_h, out_w, 3) and out.dtype == np.uint16
    assert np.abs(out - expected).max() <= 0.5 + 1e-6  # rounded once


@pytest.mark.parametrize("bands", [1, 3])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_area_average_at_fractional_positions_and_scales_is_the_exact_mean(
    pattern: npt.NDArray[np.int64], dtype: type[np.unsignedinteger], bands: int, data: st.DataObject
) -> None:
    """8- and 16-bit, 1 and 3 bands, against the exact mean at rounding once: areas starting and ending
    at eighths of a pixel (a level's box holds the region at multiples of 1 / 2**level) up to a pixel past
    the box (the partial block a level drops), shrinking and enlarging by any ratio."""
    full = pattern[..., :bands] * int(np.iinfo(dtype).max) // 4095
    r = data.draw(eighths(320, 240, 120))
    out = resample_array(full.astype(dtype), r)
    assert out.shape == (r.out_height, r.out_width, bands) and out.dtype == dtype
    assert np.abs(out - exact_area_mean(full, r)).max() <= 0.5 + 1e-6  # rounded once


def test_thumbnails_of_a_level_box_are_the_exact_means() -> None:
    """What `python -m bench.resample` times: the last level's 500 x 312 box of a 16000 x 10000 image (its
    region 312.5 rows high) to `!w,h` thumbnail sizes, 8-bit RGB."""
    full = multiscale_pattern(312, 500, 3, 255, seed=5)
    for out_w, out_h in [(400, 250), (297, 186), (173, 108), (111, 69), (100, 62)]:
        r = Resample(0.0, 0.0, 500.0, 312.5, out_w, out_h)
        assert np.abs(resample_array(full.astype(np.uint8), r) - exact_area_mean(full, r)).max() <= 0.5 + 1e-6


@pytest.mark.parametrize("bands", [1, 3])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_strips_of_one_output_row_give_the_whole_box_result(
    pattern: npt.NDArray[np.int64], dtype: type[np.unsignedinteger], bands: int, data: st.DataObject
) -> None:
    """A libvips box is averaged in strips of output rows, each from the box rows it taps (the last taps
    of a strip reaching past its last row): strips of one row each (a budget of one sample) must give
    the single strip's result, which is the exact mean."""
    full = pattern[:90, :110, :bands] * int(np.iinfo(dtype).max) // 4095
    r = data.draw(eighths(110, 90, 60))
    pixels = full.astype(dtype)
    whole = resample_array(pixels, r)
    np.testing.assert_array_equal(resample_rows(lambda y0, y1: pixels[y0:y1], 110, 90, r, 1), whole)
    assert np.abs(whole - exact_area_mean(full, r)).max() <= 0.5 + 1e-6


def test_whole_blocks_are_the_tiers_block_means(pattern: npt.NDArray[np.int64]) -> None:
    pixels = pattern.astype(np.uint16)
    for factor in (2, 4, 8):
        out = resample_array(pixels, Resample(0, 0, 320, 240, 320 // factor, 240 // factor))
        np.testing.assert_array_equal(out, block_mean(pixels, factor))


def test_enlarging_repeats_pixels_over_the_area_they_cover() -> None:
    pixels = np.array([[[10], [20]], [[30], [40]]], dtype=np.uint8)
    out = resample_array(pixels, Resample(0, 0, 2, 2, 4, 4))
    np.testing.assert_array_equal(out[..., 0], [[10, 10, 20, 20], [10, 10, 20, 20], [30, 30, 40, 40], [30, 30, 40, 40]])
    out = resample_array(pixels, Resample(0, 0, 2, 2, 3, 1))  # the middle column straddles both pixels
    np.testing.assert_array_equal(out[..., 0], [[20, 25, 30]])


def test_an_area_past_the_box_averages_what_is_inside() -> None:
    pixels = np.full((4, 4, 1), 100, dtype=np.uint8)
    pixels[:, 3] = 200
    out = resample_array(pixels, Resample(2, 0, 2.5, 4, 1, 1))  # 0.5 pixel beyond the right edge
    assert out[0, 0, 0] == 150


def test_libvips_and_array_resamples_agree(pattern: npt.NDArray[np.int64]) -> None:
    pixels = pattern.astype(np.uint8)
    mapping = Resample(3.5, 7.25, 301.5, 200.0, 173, 96)
    image = pyvips.Image.new_from_array(pixels).copy(interpretation="srgb")
    np.testing.assert_array_equal(resample_image(image, mapping).numpy(), resample_array(pixels, mapping))


@pytest.mark.parametrize("turns", range(4))
@pytest.mark.parametrize("mirror", [False, True])
def test_turning_the_box_first_turns_the_output(pattern: npt.NDArray[np.int64], turns: int, mirror: bool) -> None:
    pixels = pattern[:200, :300].astype(np.uint16)
    orientation = Orientation(turns, mirror)
    mapping = Resample(10.5, 3.0, 250.0, 180.5, 77, 41)
    turned_first = resample_array(orient_array(pixels, orientation), mapping.oriented(orientation, 300, 200))
    np.testing.assert_array_equal(turned_first, orient_array(resample_array(pixels, mapping), orientation))


def test_the_level_read_is_the_coarsest_at_least_as_dense_as_the_output() -> None:
    width, height = 16000, 10000
    levels = level_count(width, height)  # 6: 16000 ... 500
    whole = Box(0, 0, width, height)
    # a stored level's size is read as it is
    plan, resample = plan_scaled_read(width, height, levels, whole, 4000, 2500)
    assert (plan.level, resample) == (2, None)
    # in between: the finer level, averaged down by less than 2
    plan, resample = plan_scaled_read(width, height, levels, whole, 3000, 1875)
    assert plan.level == 2 and plan.box == Box(0, 0, 4000, 2500)
    assert resample == Resample(0.0, 0.0, 4000.0, 2500.0, 3000, 1875)
    # smaller than the last level: the last level
    plan, resample = plan_scaled_read(width, height, levels, whole, 100, 62)
    assert plan.level == 5 and resample is not None
    # enlarging: full resolution
    plan, resample = plan_scaled_read(width, height, levels, Box(100, 100, 10, 10), 40, 40)
    assert plan.level == 0 and plan.box == Box(100, 100, 10, 10)


def test_regions_off_the_level_grid_are_resampled_at_their_fraction() -> None:
    plan, resample = plan_scaled_read(1000, 1000, 2, Box(3, 5, 500, 500), 250, 250)
    assert plan.level == 1 and plan.box == Box(1, 2, 251, 251)
    assert resample == Resample(0.5, 0.5, 250.0, 250.0, 250, 250)


def test_edge_tiles_ending_at_the_image_edge_are_tier_reads() -> None:
    # 1001 pixels: level 1 keeps 500 (the Allen tiers drop the partial block)
    plan, resample = plan_scaled_read(1001, 1000, 2, Box(512, 0, 489, 512), 244, 256)
    assert resample is None and plan.level == 1 and plan.box == Box(256, 0, 244, 256)
    # one pixel more than the level has (a viewer's ceil): resampled from the finer level
    plan, resample = plan_scaled_read(1001, 1000, 2, Box(512, 0, 489, 512), 245, 256)
    assert resample is not None and plan.level == 0


def test_the_references_agree(pattern: npt.NDArray[np.int64]) -> None:
    np.testing.assert_allclose(tier(pattern, 2), area_mean(pattern, 0, 0, 320, 240, 80, 60))
    part = pattern[10:60, 20:57]
    np.testing.assert_allclose(area_mean(part, 0, 0, 37, 50, 23, 71), supersampled_mean(part, 23, 71))


@pytest.mark.parametrize("bands", [1, 3])
def test_a_one_pixel_image_is_enlarged(bands: int) -> None:
    """libvips gives a 1 x 1 one-band image as a 0-d array; the strips must still have their shape."""
    image = (pyvips.Image.black(1, 1, bands=bands) + 77).cast("uchar")
    out = resample_image(image, Resample(0.0, 0.0, 1.0, 1.0, 1, 2)).numpy()
    assert out.reshape(-1).tolist() == [77] * 2 * bands
