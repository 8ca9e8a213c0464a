"""IIIF Image API request parameters, 3.0 and 2.1: parsing, and what they mean in pixels. No HTTP.

`parse_image_request` turns the four path segments ``{region}/{size}/{rotation}/{quality}.{format}``
into an `ImageRequest`; `region_box` and `output_size` then resolve region and size against an
image of `width` x `height` pixels and the server's `Limits`. Every malformed or unsupported value,
and every request the specification calls a client error (zero sizes, a region outside the image,
upscaling without ``^`` in 3.0, sizes beyond the limits), raises `InvalidRequest` naming the
parameter. Percentages are exact fractions; pixel results are rounded half up.

Version differences: 3.0 has ``max`` and the ``^`` prefix (upscaling only with it); 2.1 has ``full``
and ``max`` and no ``^`` (upscaling is allowed where the size asks for it: ``sizeAboveFull``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from tierserve.core.orientation import Orientation
from tierserve.core.tiers import Box
from tierserve.errors import InvalidRequest, LimitExceeded, RegionOutsideImage

Version = Literal[2, 3]
RegionKind = Literal["full", "square", "pixels", "percent"]
#: An exact number: the pixels of a region are ints, its percents Fractions.
Rational = Fraction | int
SizeKind = Literal["max", "full", "width", "height", "percent", "exact", "confined"]
QUALITIES = ("default", "color", "gray", "bitonal")
FORMATS = ("jpg", "png", "tif", "webp")

_INTEGER = r"\d{1,10}"
_NUMBER = r"(?:\d{1,10}(?:\.\d{1,10})?|\.\d{1,10})"
_PIXELS = re.compile(rf"({_INTEGER}),({_INTEGER}),({_INTEGER}),({_INTEGER})")
_PERCENTS = re.compile(rf"pct:({_NUMBER}),({_NUMBER}),({_NUMBER}),({_NUMBER})")
_SIZE = re.compile(rf"(?P<w>{_INTEGER})?,(?P<h>{_INTEGER})?")
_ROTATION = re.compile(rf"(!?)({_NUMBER})")
_QUALITY_FORMAT = re.compile(r"([a-z]+)\.([a-z0-9]+)")


@dataclass(frozen=True, slots=True)
class Region:
    """`kind`; for pixels and percent, `values` = x, y, w, h (pixels, or percent of the image's sides)."""

    kind: RegionKind
    values: tuple[Rational, Rational, Rational, Rational] | None = None


@dataclass(frozen=True, slots=True)
class Size:
    """`kind`: max, full (2.1), width (``w,``), height (``,h``), percent (``pct:n``), exact (``w,h``) or
    confined (``!w,h``); `upscale` is the 3.0 ``^`` prefix."""

    kind: SizeKind
    width: int | None = None
    height: int | None = None
    percent: Fraction | None = None
    upscale: bool = False


@dataclass(frozen=True, slots=True)
class ImageRequest:
    """One image request of Image API `version`."""

    version: Version
    region: Region
    size: Size
    orientation: Orientation
    quality: str
    format: str


@dataclass(frozen=True, slots=True)
class Limits:
    """The largest output the server makes: sides and area in output pixels."""

    max_width: int
    max_height: int
    max_area: int


def parse_image_request(version: Version, region: str, size: str, rotation: str, quality_format: str) -> ImageRequest:
    """The request of the path segments ``{region}/{size}/{rotation}/{quality}.{format}``."""
    quality, image_format = parse_quality_format(quality_format)
    return ImageRequest(
        version, parse_region(region), parse_size(version, size), parse_rotation(rotation), quality, image_format
    )


def parse_region(text: str) -> Region:
    """``full``, ``square``, ``x,y,w,h`` or ``pct:x,y,w,h``."""
    if text in ("full", "square"):
        return Region(text)  # type: ignore[arg-type]
    pixels = _PIXELS.fullmatch(text)
    percents = _PERCENTS.fullmatch(text)
    found = pixels or percents
    if found is None:
        raise InvalidRequest(f"region must be full, square, x,y,w,h or pct:x,y,w,h; got {_shown(text)}")
    number = int if pixels else Fraction  # ints: no Fraction work on a tile's region
    x, y, w, h = (number(value) for value in found.groups())
    if w == 0 or h == 0:
        raise InvalidRequest(f"region {text} has a zero width or height")
    return Region("pixels" if pixels else "percent", (x, y, w, h))


def parse_size(version: Version, text: str) -> Size:
    """``max``, ``w,``, ``,h``, ``pct:n``, ``w,h``, ``!w,h``; 3.0 with an optional ``^``, 2.1 also ``full``."""
    body = text
    upscale = version == 3 and body.startswith("^")
    if upscale:
        body = body[1:]
    if body == "max" or (body == "full" and version == 2):
        return Size(body, upscale=upscale)  # type: ignore[arg-type]
    if body == "full":
        raise InvalidRequest("size full is Image API 2; in 3.0 ask for max")
    if body.startswith("pct:"):
        if re.fullmatch(_NUMBER, body[4:]) is None:
            raise InvalidRequest(f"size pct:n needs a number n; got {_shown(text)}")
        percent = Fraction(body[4:])
        if percent == 0:
            raise InvalidRequest(f"size {text} has no pixels")
        if version == 3 and percent > 100 and not upscale:
            raise InvalidRequest(f"size {text} is over 100 percent: upscaling needs ^pct:{body[4:]}")
        return Size("percent", percent=percent, upscale=upscale)
    confined = body.startswith("!")
    found = _SIZE.fullmatch(body[1:] if confined else body)
    if found is None or (found["w"] is None and found["h"] is None) or (confined and None in found.groups()):
        grammar = "max, w,, ,h, pct:n, w,h or !w,h" + (" (with ^ to upscale)" if version == 3 else ", or full")
        raise InvalidRequest(f"size must be {grammar}; got {_shown(text)}")
    width = None if found["w"] is None else int(found["w"])
    height = None if found["h"] is None else int(found["h"])
    if width == 0 or height == 0:
        raise InvalidRequest(f"size {text} has no pixels")
    kind: SizeKind = "confined" if confined else "exact" if width and height else "width" if width else "height"
    return Size(kind, width, height, upscale=upscale)


def parse_rotation(text: str) -> Orientation:
    """``n`` or ``!n`` (mirrored first), n degrees clockwise; only multiples of 90 are supported."""
    found = _ROTATION.fullmatch(text)
    if found is None:
        raise InvalidRequest(f"rotation must be n or !n, n degrees from 0 to 360; got {_shown(text)}")
    degrees = Fraction(found[2]) if "." in found[2] else int(found[2])
    if degrees > 360:
        raise InvalidRequest(f"rotation must be at most 360 degrees; got {text}")
    if degrees % 90:
        raise InvalidRequest(f"rotation by {found[2]} degrees is not supported: use 0, 90, 180 or 270")
    return Orientation(int(degrees // 90) % 4, mirror=found[1] == "!")


def parse_quality_format(text: str) -> tuple[str, str]:
    """``{quality}.{format}``: quality default, color, gray or bitonal; format jpg, png, tif or webp."""
    found = _QUALITY_FORMAT.fullmatch(text)
    if found is None:
        raise InvalidRequest(f"the last segment must be quality.format, e.g. default.jpg; got {_shown(text)}")
    quality, image_format = found.groups()
    if quality not in QUALITIES:
        raise InvalidRequest(f"quality must be one of {', '.join(QUALITIES)}; got {_shown(quality)}")
    if image_format not in FORMATS:
        raise InvalidRequest(f"format must be one of {', '.join(FORMATS)}; got {_shown(image_format)}")
    return quality, image_format


def region_box(region: Region, width: int, height: int) -> Box:
    """The region in pixels of a `width` x `height` image, cut at the image's edges. `square` is the
    centred square of the shorter side. Raises `RegionOutsideImage` when no pixel is inside."""
    if region.kind == "full":
        return Box(0, 0, width, height)
    if region.kind == "square":
        side = min(width, height)
        return Box((width - side) // 2, (height - side) // 2, side, side)
    assert region.values is not None
    x, y, w, h = region.values
    if region.kind == "percent":
        left, right = _round(Fraction(x * width, 100)), _round(Fraction((x + w) * width, 100))
        top, bottom = _round(Fraction(y * height, 100)), _round(Fraction((y + h) * height, 100))
    else:
        left, right, top, bottom = int(x), int(x + w), int(y), int(y + h)
    box = Box(left, top, right - left, bottom - top).intersect(Box(0, 0, width, height))
    if box is None:
        raise RegionOutsideImage(f"region {_region_text(region)} has no pixel inside the {width}x{height} image")
    return box


def output_size(version: Version, size: Size, width: int, height: int, limits: Limits) -> tuple[int, int]:
    """The output's width and height for a region of `width` x `height` pixels.

    ``max`` is the region's size, made smaller to fit the limits (``^max``: as large as the limits
    allow). Heights of ``w,`` and widths of ``,h`` keep the aspect ratio, as ``pct:n`` and ``!w,h`` do.
    Raises `InvalidRequest` for an output with no pixel, for upscaling without ``^`` in 3.0 (also a
    ``!w,h`` whose best fit is larger than the region, as the consortium's validator reads 3.0), and
    `LimitExceeded` beyond `limits`.
    """
    if size.kind == "max":
        out = _fit(width, height, limits, size.upscale)
    elif size.kind == "full":
        out = width, height
    elif size.kind == "width":
        assert size.width is not None
        out = size.width, _round_ratio(height * size.width, width)
    elif size.kind == "height":
        assert size.height is not None
        out = _round_ratio(width * size.height, height), size.height
    elif size.kind == "percent":
        assert size.percent is not None
        out = _round(width * size.percent / 100), _round(height * size.percent / 100)
    elif size.kind == "exact":
        assert size.width is not None and size.height is not None
        out = size.width, size.height
    else:
        assert size.width is not None and size.height is not None
        scale = min(Fraction(size.width, width), Fraction(size.height, height))
        out = min(size.width, _round(width * scale)), min(size.height, _round(height * scale))
    out_width, out_height = out
    if out_width < 1 or out_height < 1:
        raise InvalidRequest(f"the output of {out_width}x{out_height} pixels has no pixel; ask for a larger size")
    if version == 3 and not size.upscale and (out_width > width or out_height > height):
        raise InvalidRequest(
            f"size of {out_width}x{out_height} is larger than the {width}x{height} region: upscaling needs ^"
        )
    _check_limits(out_width, out_height, limits)
    return out_width, out_height


def _fit(width: int, height: int, limits: Limits, upscale: bool) -> tuple[int, int]:
    """The largest size of the region's aspect ratio within `limits`, at most the region's size unless
    `upscale`."""
    scale = min(
        Fraction(limits.max_width, width),
        Fraction(limits.max_height, height),
        Fraction(math.sqrt(limits.max_area / (width * height))),
    )
    if not upscale:
        scale = min(scale, Fraction(1))
    out_width, out_height = max(1, math.floor(width * scale)), max(1, math.floor(height * scale))
    while out_width * out_height > limits.max_area:  # the square root was rounded up
        if out_width >= out_height:
            out_width -= 1
        else:
            out_height -= 1
    return out_width, out_height


def _check_limits(width: int, height: int, limits: Limits) -> None:
    if width > limits.max_width or height > limits.max_height:
        raise LimitExceeded(
            f"output of {width}x{height} pixels exceeds maxWidth={limits.max_width} or maxHeight={limits.max_height}",
            "max_output_pixels",
        )
    if width * height > limits.max_area:
        raise LimitExceeded(
            f"output of {width}x{height} = {width * height} pixels exceeds maxArea={limits.max_area} "
            "(max_output_pixels); ask for a smaller size or region",
            "max_output_pixels",
        )


def _round(value: Rational) -> int:
    """Rounded half up."""
    return math.floor(value + Fraction(1, 2))


def _round_ratio(numerator: int, denominator: int) -> int:
    """`numerator` / `denominator` (> 0) rounded half up, in integers (a tile's size: no Fraction)."""
    return (2 * numerator + denominator) // (2 * denominator)


def _region_text(region: Region) -> str:
    assert region.values is not None
    numbers = ",".join(str(int(v)) if v.denominator == 1 else str(float(v)) for v in region.values)
    return ("pct:" if region.kind == "percent" else "") + numbers


def _shown(text: str) -> str:
    """A client's text in a message, quoted and cut short."""
    return repr(text[:40] + ("..." if len(text) > 40 else ""))
