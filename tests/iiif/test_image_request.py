"""IIIF Image API request syntax (3.0 and 2.1): every form, what it means in pixels, and the errors."""

from __future__ import annotations

from fractions import Fraction

import pytest

from tierserve.core.orientation import Orientation
from tierserve.core.tiers import Box
from tierserve.errors import InvalidRequest, LimitExceeded, RegionOutsideImage
from tierserve.iiif.image_request import (
    Limits,
    Region,
    Size,
    Version,
    output_size,
    parse_image_request,
    parse_quality_format,
    parse_region,
    parse_rotation,
    parse_size,
    region_box,
)

LIMITS = Limits(65535, 65535, 200_000_000)


@pytest.mark.parametrize(
    ("text", "box"),
    [
        ("full", Box(0, 0, 1000, 800)),
        ("square", Box(100, 0, 800, 800)),  # centred on the longer side
        ("10,20,30,40", Box(10, 20, 30, 40)),
        ("990,790,50,50", Box(990, 790, 10, 10)),  # cut at the image's edge
        ("pct:10,25,50,50", Box(100, 200, 500, 400)),
        ("pct:41.6,7.5,40,70", Box(416, 60, 400, 560)),
        ("pct:0.5,0,99.5,100", Box(5, 0, 995, 800)),
        ("pct:50,50,100,100", Box(500, 400, 500, 400)),
    ],
)
def test_regions(text: str, box: Box) -> None:
    assert region_box(parse_region(text), 1000, 800) == box


def test_square_of_a_portrait_image() -> None:
    assert region_box(Region("square"), 600, 1000) == Box(0, 200, 600, 600)


@pytest.mark.parametrize(
    "text", ["", "Full", "square ", "1,2,3", "1,2,3,4,5", "-1,0,5,5", "1.5,0,5,5", "pct:", "pct:1,2,3", "pct:+1,1,1,1"]
)
def test_malformed_regions_are_bad_requests(text: str) -> None:
    with pytest.raises(InvalidRequest, match="region"):
        parse_region(text)


@pytest.mark.parametrize("text", ["0,0,0,10", "0,0,10,0", "pct:0,0,0,10"])
def test_regions_without_width_or_height_are_bad_requests(text: str) -> None:
    with pytest.raises(InvalidRequest, match="zero"):
        parse_region(text)


@pytest.mark.parametrize("text", ["1000,0,10,10", "0,800,10,10", "pct:100,0,10,10", "pct:0,0,0.01,10"])
def test_regions_outside_the_image_are_bad_requests(text: str) -> None:
    with pytest.raises(RegionOutsideImage):
        region_box(parse_region(text), 1000, 800)


@pytest.mark.parametrize(
    ("version", "text", "size"),
    [
        (3, "max", (1000, 800)),
        (2, "max", (1000, 800)),
        (2, "full", (1000, 800)),
        (3, "500,", (500, 400)),
        (3, ",400", (500, 400)),
        (3, "333,", (333, 266)),  # 266.4
        (3, "pct:50", (500, 400)),
        (3, "pct:12.5", (125, 100)),
        (3, "pct:0.1", (1, 1)),  # 0.8 rounds up to 1
        (3, "300,700", (300, 700)),  # distorted
        (3, "!500,500", (500, 400)),
        (3, "!2000,400", (500, 400)),
        (3, "^max", (15811, 12649)),  # as large as maxArea allows
        (3, "^2000,", (2000, 1600)),
        (3, "^,1600", (2000, 1600)),
        (3, "^pct:150", (1500, 1200)),
        (3, "^2000,100", (2000, 100)),
        (3, "^!3000,3000", (3000, 2400)),
        (3, "^500,", (500, 400)),  # ^ allows upscaling, it does not demand it
        (2, "2000,", (2000, 1600)),  # 2.1: sizeAboveFull
        (2, "pct:150", (1500, 1200)),
        (2, "!3000,3000", (3000, 2400)),
    ],
)
def test_sizes(version: Version, text: str, size: tuple[int, int]) -> None:
    assert output_size(version, parse_size(version, text), 1000, 800, LIMITS) == size


@pytest.mark.parametrize("text", ["1001,", ",801", "1001,800", "pct:100.1", "pct:200", "!2000,3000", "full"])
def test_3_refuses_upscaling_without_caret_and_full(text: str) -> None:
    with pytest.raises(InvalidRequest):
        output_size(3, parse_size(3, text), 1000, 800, LIMITS)


@pytest.mark.parametrize(
    ("version", "text"),
    [
        (3, ""),
        (3, "^"),
        (3, ","),
        (3, "abc"),
        (3, "10"),
        (3, "!10,"),
        (3, "!,10"),
        (3, "pct:"),
        (3, "pct:x"),
        (3, "-5,"),
        (3, "5.5,"),
        (3, "^^5,"),
        (2, "^5,"),  # no ^ in 2.1
        (2, "^max"),
        (3, "Max"),
    ],
)
def test_malformed_sizes_are_bad_requests(version: Version, text: str) -> None:
    with pytest.raises(InvalidRequest, match="size"):
        parse_size(version, text)


@pytest.mark.parametrize("text", ["0,", ",0", "0,10", "10,0", "!0,10", "pct:0", "^pct:0"])
def test_zero_sizes_are_bad_requests(text: str) -> None:
    with pytest.raises(InvalidRequest, match="no pixels"):
        parse_size(3, text)


def test_sizes_that_round_to_nothing_are_bad_requests() -> None:
    with pytest.raises(InvalidRequest, match="no pixel"):
        output_size(3, parse_size(3, "1,"), 1000, 10, LIMITS)  # height 0.01


def test_max_fits_the_limits_and_explicit_sizes_beyond_them_are_refused() -> None:
    limits = Limits(4000, 3000, 1_000_000)
    assert output_size(3, Size("max"), 8000, 2000, limits) == (2000, 500)  # the area binds
    assert output_size(3, Size("max"), 10000, 100, limits) == (4000, 40)  # the width binds
    assert output_size(2, Size("max"), 10000, 100, limits) == (4000, 40)
    width, height = output_size(3, Size("max", upscale=True), 300, 200, limits)
    assert width * height <= 1_000_000 and (width, height) == (1224, 816)
    with pytest.raises(LimitExceeded, match="maxArea=1000000"):
        output_size(3, parse_size(3, "1001,1000"), 2000, 2000, limits)
    with pytest.raises(LimitExceeded, match="maxWidth=4000"):
        output_size(3, parse_size(3, "4001,"), 8000, 100, limits)
    with pytest.raises(LimitExceeded):
        output_size(2, Size("full"), 8000, 2000, limits)  # 2.1 full is never scaled


@pytest.mark.parametrize(
    ("text", "orientation"),
    [
        ("0", Orientation(0)),
        ("90", Orientation(1)),
        ("180", Orientation(2)),
        ("270", Orientation(3)),
        ("360", Orientation(0)),
        ("90.0", Orientation(1)),
        ("!0", Orientation(0, mirror=True)),
        ("!270", Orientation(3, mirror=True)),
    ],
)
def test_rotations(text: str, orientation: Orientation) -> None:
    assert parse_rotation(text) == orientation


@pytest.mark.parametrize("text", ["", "-90", "90deg", "!!90", "90!", "abcd", "361", "1234", "22.5", "45", "!1"])
def test_other_rotations_are_bad_requests(text: str) -> None:
    with pytest.raises(InvalidRequest, match="rotation"):
        parse_rotation(text)


@pytest.mark.parametrize("quality", ["default", "color", "gray", "bitonal"])
@pytest.mark.parametrize("image_format", ["jpg", "png", "tif", "webp"])
def test_qualities_and_formats(quality: str, image_format: str) -> None:
    assert parse_quality_format(f"{quality}.{image_format}") == (quality, image_format)


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("default", "quality.format"),
        ("default.", "quality.format"),
        ("grey.jpg", "quality"),
        ("native.jpg", "quality"),
        ("Default.jpg", "quality.format"),
        ("default.gif", "format"),
        ("default.jp2", "format"),
        ("default.pdf", "format"),
        ("default.JPG", "quality.format"),
        ("default.jpg.jpg", "quality.format"),
    ],
)
def test_other_qualities_and_formats_are_bad_requests(text: str, names: str) -> None:
    with pytest.raises(InvalidRequest, match=names):
        parse_quality_format(text)


def test_a_whole_request() -> None:
    request = parse_image_request(3, "pct:10,10,50,50", "^!300,200", "!90", "gray.png")
    assert request.region == Region("percent", (Fraction(10), Fraction(10), Fraction(50), Fraction(50)))
    assert request.size == Size("confined", 300, 200, upscale=True)
    assert request.orientation == Orientation(1, mirror=True)
    assert (request.version, request.quality, request.format) == (3, "gray", "png")
