"""The NumPy pipeline of small reads gives exactly the pixels of the libvips pipeline, for every option."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest
import pyvips
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.images import decode_jpeg, multiscale_pattern, psnr, slide_pattern
from tierserve.core import render as vips_steps
from tierserve.core import render_array as array_steps
from tierserve.core.encode import Encoding, encode_jpeg, encode_jpeg_array
from tierserve.core.filters import ChannelWeights, Colormap, Contrast
from tierserve.core.orientation import Orientation
from tierserve.core.palettes import PALETTES
from tierserve.core.pyramid import PyramidFile
from tierserve.core.render import RenderSpec, render
from tierserve.core.render_array import render_array
from tierserve.core.resample import plan_scaled_read
from tierserve.core.tiers import Box, Window, level_count, max_downsample, plan_read
from tierserve.core.tiles import TileReader
from tierserve.core.windowing import ChannelWindow
from tierserve.ingest.pyramid_writer import write_pyramid
from tierserve.storage import local_file

SIZE = (900, 600)  # width, height
BITS = {"rgb8": 8, "grey8": 8, "rgb12": 12, "grey16": 16}


@pytest.fixture(scope="module")
def pyramids(tmp_path_factory: pytest.TempPathFactory) -> dict[str, PyramidFile]:
    directory = tmp_path_factory.mktemp("render-array")
    width, height = SIZE
    arrays = {
        "rgb8": slide_pattern(height, width, seed=8).astype(np.uint8),
        "grey8": slide_pattern(height, width, seed=9)[..., 0].astype(np.uint8),
        "rgb12": multiscale_pattern(height, width, 3, 4095, seed=10).astype(np.uint16),
        "grey16": multiscale_pattern(height, width, 1, 65535, seed=12)[..., 0].astype(np.uint16),
    }
    out = {}
    for name, array in arrays.items():
        path = directory / f"{name}.ome.tif"
        write_pyramid(pyvips.Image.new_from_array(array), path, directory, quality=90)
        out[name] = PyramidFile(local_file(path), TileReader())
    return out


@st.composite
def specs(draw: st.DrawFn, bits: int, bands: int) -> RenderSpec:
    width, height = SIZE
    levels = level_count(width, height)
    downsample = draw(st.integers(0, max_downsample(width, height)))
    tier_w, tier_h = width >> downsample, height >> downsample
    x, y = draw(st.integers(0, tier_w - 1)), draw(st.integers(0, tier_h - 1))
    w, h = draw(st.integers(1, tier_w - x)), draw(st.integers(1, tier_h - y))
    plan = plan_read(width, height, levels, Window(downsample, x << downsample, y << downsample, w, h))
    top = (1 << bits) - 1

    def bound() -> tuple[int, int]:
        lower = draw(st.integers(0, top - 1))
        return lower, draw(st.integers(lower + 1, top))

    window = ChannelWindow((bound(), bound(), bound())) if bits > 8 or draw(st.booleans()) else None
    fraction = st.floats(0, 1)
    contrast = draw(st.none() | st.builds(Contrast, st.floats(0, 4), st.floats(-1, 1)))
    weights = draw(st.none() | st.builds(ChannelWeights, fraction, fraction, fraction))
    colormap = None
    if draw(st.booleans()):
        low = draw(st.integers(0, 200))
        palette = draw(st.sampled_from([pid for pid, _, _ in PALETTES]))
        colormap = Colormap(draw(fraction), draw(fraction), low, draw(st.integers(low + 1, 255)), palette)
    channel = draw(st.none() | st.integers(0, 2)) if bands == 3 else None
    return RenderSpec(plan, window, contrast, weights, colormap, channel)


@st.composite
def iiif_specs(draw: st.DrawFn, bits: int, bands: int) -> RenderSpec:
    """`specs` with the IIIF steps: any region at any size (area-averaged unless a stored level),
    mirrored and turned, in colour, grey or bitonal."""
    width, height = SIZE
    x, y = draw(st.integers(0, width - 1)), draw(st.integers(0, height - 1))
    w, h = draw(st.integers(1, width - x)), draw(st.integers(1, height - y))
    out_w, out_h = draw(st.integers(1, 400)), draw(st.integers(1, 400))
    plan, resample = plan_scaled_read(width, height, level_count(width, height), Box(x, y, w, h), out_w, out_h)
    return replace(
        draw(specs(bits, bands)),
        plan=plan,
        resample=resample,
        orientation=Orientation(draw(st.integers(0, 3)), draw(st.booleans())),
        quality=draw(st.sampled_from(["color", "gray", "bitonal"])),
    )


@pytest.mark.parametrize("strategy", [specs, iiif_specs])
@pytest.mark.parametrize("name", sorted(BITS))
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_array_pipeline_equals_libvips_pipeline(
    pyramids: dict[str, PyramidFile], name: str, strategy: Any, data: st.DataObject
) -> None:
    spec = data.draw(strategy(BITS[name], 1 if name.startswith("grey") else 3))
    image = render(pyramids[name], spec)  # .numpy() drops a single band's axis, and a 1 x 1 one's too
    expected = image.numpy().reshape(image.height, image.width, image.bands)
    got = render_array(pyramids[name], spec)
    assert got.dtype == np.uint8
    assert got.shape == expected.shape and image.bands == (3 if spec.quality == "color" else 1)
    assert np.array_equal(got, expected), f"{int(np.abs(got.astype(int) - expected).max())} levels apart"


@pytest.mark.parametrize(("quality", "chroma"), [(75, "auto"), (95, "auto"), (95, "420"), (0, "auto")])
def test_both_jpeg_encoders_agree(pyramids: dict[str, PyramidFile], quality: int, chroma: str) -> None:
    spec = RenderSpec(plan_read(*SIZE, level_count(*SIZE), Window(0, 100, 50, 300, 200)), None)
    pixels = render_array(pyramids["rgb8"], spec)
    encoding = Encoding(quality, chroma)  # type: ignore[arg-type]
    vips_chunks: list[bytes] = []
    array_chunks: list[bytes] = []
    encode_jpeg(render(pyramids["rgb8"], spec), encoding, lambda chunk: vips_chunks.append(chunk) is None)
    encode_jpeg_array(pixels, encoding, lambda chunk: array_chunks.append(chunk) is None)
    outputs = [b"".join(vips_chunks), b"".join(array_chunks)]
    from_vips, from_array = (decode_jpeg(data) for data in outputs)
    assert from_array.shape == (200, 300, 3)
    assert psnr(from_array, from_vips.astype(np.int64)) > 45
    assert abs(len(outputs[0]) - len(outputs[1])) < 0.02 * len(outputs[0])


def test_luma_rounds_like_libvips_for_every_rgb_value() -> None:
    """An identity colour map (opacity 0 over grey 0-255) outputs the rounded luma itself."""
    values = np.arange(1 << 24, dtype=np.uint32)
    every = np.stack([values >> 16, (values >> 8) & 255, values & 255], axis=-1).astype(np.uint8).reshape(4096, 4096, 3)
    plan = plan_read(4096, 4096, 1, Window(0, 0, 0, 4096, 4096))
    spec = RenderSpec(plan, None, colormap=Colormap(0.0, 0.0, 0, 255, PALETTES[0][0]))
    image = pyvips.Image.new_from_array(every).copy(interpretation="srgb")
    expected = vips_steps.apply_colormap(image, spec).numpy()
    assert np.array_equal(array_steps.apply_colormap(every, spec), expected)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("shrink", [2, 4, 8, 32])
@pytest.mark.parametrize("bands", [1, 3, 4])
def test_block_mean_is_the_mean_rounded_half_to_even(dtype: type[np.unsignedinteger], shrink: int, bands: int) -> None:
    """Against a float mean over reshaped blocks; the blocks cover every remainder (ties included)
    and the extremes, a partial last row and column of blocks is dropped, and the pixels are a view
    into a wider array as `PyramidFile.read_array` returns them."""
    top = np.iinfo(dtype).max
    rng = np.random.default_rng(shrink * 10 + bands)
    height, width = shrink * 9 + shrink - 1, shrink * 7 + 1
    canvas = rng.integers(0, top, (height + 5, width + 11, bands), dtype=dtype, endpoint=True)
    pixels = canvas[3 : 3 + height, 7 : 7 + width]
    pixels[:shrink, :shrink] = top
    pixels[shrink : 2 * shrink, :shrink] = 0
    half_block = np.zeros((shrink, shrink, bands), dtype)
    half_block.reshape(-1, bands)[: shrink * shrink // 2] = 1  # mean 0.5: rounds to 0
    pixels[2 * shrink : 3 * shrink, :shrink] = half_block
    pixels[3 * shrink : 4 * shrink, :shrink] = half_block + 2  # mean 2.5: rounds to 2
    pixels[4 * shrink : 5 * shrink, :shrink] = half_block + 1  # mean 1.5: rounds to 2
    blocks = pixels[: 9 * shrink, : 7 * shrink].astype(np.float64).reshape(9, shrink, 7, shrink, bands)
    expected = np.rint(blocks.mean(axis=(1, 3))).astype(dtype)
    got = array_steps.block_mean(pixels, shrink)
    assert got.dtype == dtype
    assert np.array_equal(got, expected)
    assert got[:5, 0, 0].tolist() == [top, 0, 0, 2, 2]


@pytest.mark.parametrize(
    ("dtype", "shrink"), [(np.uint8, 2), (np.uint8, 4), (np.uint8, 8), (np.uint8, 16), (np.uint16, 2), (np.uint16, 4)]
)
def test_block_mean_rounding_is_rint_for_every_block_sum(dtype: type[np.unsignedinteger], shrink: int) -> None:
    """`block_mean`'s integer rounding, in the type `block_mean` sums in, for every sum of a block."""
    kind = array_steps._sum_type(np.dtype(dtype), shrink)
    sums = np.arange(int(np.iinfo(dtype).max) * shrink * shrink + 1, dtype=kind)
    expected = np.rint(sums / (shrink * shrink))
    got = array_steps._shift_half_to_even(sums.copy(), 2 * (shrink.bit_length() - 1), np.empty_like(sums))
    assert np.array_equal(got, expected)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("shrink", [8, 32, 1024])
def test_block_mean_rounding_is_rint_for_random_and_extreme_sums(dtype: type[np.unsignedinteger], shrink: int) -> None:
    """As above where every sum is too many: random sums, and sums just below, at and above a whole
    and a half block, for random quotients and the extreme ones, up to the largest."""
    area, top = shrink * shrink, int(np.iinfo(dtype).max)
    rng = np.random.default_rng(shrink)
    kind = array_steps._sum_type(np.dtype(dtype), shrink)
    quotients = np.concatenate([rng.integers(0, top, 1000), [0, 1, 2, top - 2, top - 1, top]])
    offsets = np.array([0, 1, area // 2 - 1, area // 2, area // 2 + 1, area - 1])
    edges = (quotients[:, None] * area + offsets).ravel()
    sums = np.concatenate([rng.integers(0, top * area, 1 << 16, endpoint=True), edges])
    sums = sums[sums <= top * area].astype(kind)
    expected = np.rint(sums / area)
    got = array_steps._shift_half_to_even(sums.copy(), 2 * (shrink.bit_length() - 1), np.empty_like(sums))
    assert np.array_equal(got, expected)


def test_stored_pixels_are_the_read_box_as_it_is(pyramids: dict[str, PyramidFile]) -> None:
    """Where `RenderSpec.stored_pixels` holds (a stored tile may answer), both pipelines give the read
    box's pixels unchanged, at every stored level: a step added to them without it fails here."""
    pyramid = pyramids["rgb8"]
    for downsample in range(level_count(*SIZE)):
        spec = RenderSpec(plan_read(*SIZE, level_count(*SIZE), Window(downsample, 0, 0, 256, 128)), None)
        assert spec.stored_pixels
        stored = pyramid.read_array(spec.plan.level, spec.plan.box)
        image = render(pyramid, spec)
        assert np.array_equal(render_array(pyramid, spec), stored)
        assert np.array_equal(image.numpy().reshape(image.height, image.width, image.bands), stored)


@pytest.mark.parametrize(
    "option",
    [
        {"window": ChannelWindow(((0, 200), (0, 200), (0, 200)))},
        {"contrast": Contrast(1.5, 0.0)},
        {"weights": ChannelWeights(1.0, 1.0, 0.5)},
        {"colormap": Colormap(1.0, 0.0, 0, 255, PALETTES[0][0])},
        {"native": True},
        {"orientation": Orientation(0, True)},
        {"quality": "gray"},
        {"plan": plan_read(*SIZE, level_count(*SIZE), Window(level_count(*SIZE), 0, 0, 64, 32))},
    ],
    ids=["window", "contrast", "weights", "colormap", "native", "mirror", "gray", "beyond-the-levels"],
)
def test_any_display_option_or_step_is_not_stored_pixels(option: dict[str, Any]) -> None:
    spec = RenderSpec(plan_read(*SIZE, level_count(*SIZE), Window(0, 0, 0, 256, 256)), None)
    assert spec.stored_pixels and not replace(spec, **option).stored_pixels
