"""Image-download query parameters: one table drives strict parsing and the OpenAPI description.

Every endpoint accepts the union of the Allen options.  Parsing is strict: unknown or repeated
parameters, non-decimal integers, booleans other than true/false/1/0, and conflicting views are
errors naming the parameter.  The seed documentation's form ``/section_image_download/ID&k=v`` (``&``
instead of ``?``) is accepted by splitting the path id.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from tierserve.core.filters import ChannelWeights, Colormap, Contrast
from tierserve.core.palettes import palette_id
from tierserve.core.windowing import ChannelWindow
from tierserve.downloads import DisplayOptions, DownloadOptions
from tierserve.errors import InvalidRequest
from tierserve.layers import LayerKind

_DECIMAL = re.compile(r"^[0-9]{1,19}$")
_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}
_VIEWS = (
    LayerKind.EXPRESSION,
    LayerKind.PROJECTION,
    LayerKind.TUMOR_FEATURE_ANNOTATION,
    LayerKind.TUMOR_FEATURE_BOUNDARY,
)
#: Largest accepted left/top/width/height value (full-resolution or tier pixels).
MAX_COORDINATE = 2**31 - 1
#: Largest accepted downsample (a tier 2**32 times smaller has no pixels in any image).
MAX_DOWNSAMPLE = 32
_NUMBER = re.compile(r"^[+-]?(\d{1,9}(\.\d{0,9})?|\.\d{1,9})$")
_FORMATS = {"jpeg": "jpeg", "jpg": "jpeg", "png": "png", "tiff": "tiff", "tif": "tiff"}


def parse_integer(name: str, raw: str, low: int, high: int) -> int:
    """A decimal integer in [low, high]; no sign, no spaces, no decimal point."""
    if not _DECIMAL.fullmatch(raw):
        raise InvalidRequest(f"{name} must be a non-negative integer, got {raw!r}")
    value = int(raw)
    if not low <= value <= high:
        raise InvalidRequest(f"{name} must be between {low} and {high}, got {value}")
    return value


def parse_boolean(name: str, raw: str) -> bool:
    try:
        return _BOOLEANS[raw.lower()]
    except KeyError:
        raise InvalidRequest(f"{name} must be true or false, got {raw!r}") from None


def parse_range(raw: str) -> ChannelWindow:
    parts = raw.split(",")
    if len(parts) != 6 or not all(_DECIMAL.fullmatch(p) for p in parts):
        raise InvalidRequest(f"range must be 6 comma-separated non-negative integers rl,ru,gl,gu,bl,bu; got {raw!r}")
    values = tuple(int(p) for p in parts)
    return ChannelWindow.from_flat(values)  # type: ignore[arg-type]


def parse_numbers(name: str, raw: str, count: int, meaning: str) -> list[float]:
    """Exactly `count` comma-separated decimal numbers."""
    parts = raw.split(",")
    if len(parts) != count or not all(_NUMBER.fullmatch(p) for p in parts):
        raise InvalidRequest(f"{name} must be {count} comma-separated numbers {meaning}; got {raw!r}")
    return [float(p) for p in parts]


def parse_contrast(raw: str) -> Contrast:
    gain, bias = parse_numbers("contrast", raw, 2, "gain,bias")
    return Contrast(gain, bias)


def parse_rgb(raw: str) -> ChannelWeights:
    red, green, blue = parse_numbers("rgb", raw, 3, "r,g,b (each 0-1)")
    return ChannelWeights(red, green, blue)


def parse_colormap(raw: str) -> Colormap:
    """``gain,lower_threshold,input_min,input_max,palette`` or a bare palette name or id."""
    parts = raw.split(",")
    if len(parts) == 1:
        return Colormap.plain(palette_id(raw))
    if len(parts) != 5:
        raise InvalidRequest(
            f"colormap must be a palette name or gain,lower_threshold,input_min,input_max,palette; got {raw!r}"
        )
    gain, threshold, low, high = parse_numbers("colormap", ",".join(parts[:4]), 4, "gain,lower_threshold,min,max")
    return Colormap(gain, threshold, low, high, palette_id(parts[4]))


def parse_format(raw: str) -> str:
    try:
        return _FORMATS[raw.lower()]
    except KeyError:
        raise InvalidRequest(f"format must be jpeg, png or tiff; got {raw!r}") from None


def parse_view(raw: str) -> LayerKind:
    for kind in _VIEWS:
        if raw == kind.value:
            return kind
    raise InvalidRequest(f"view must be one of {', '.join(k.value for k in _VIEWS)}; got {raw!r}")


@dataclass(frozen=True, slots=True)
class Param:
    """One query parameter: its OpenAPI type and description, and how to parse its raw text."""

    name: str
    schema: dict[str, Any]
    description: str
    parse: Callable[[str], Any]


def _integer(name: str, low: int, high: int, description: str) -> Param:
    return Param(
        name,
        {"type": "integer", "minimum": low, "maximum": high},
        description,
        lambda raw: parse_integer(name, raw, low, high),
    )


def _boolean(name: str, description: str) -> Param:
    return Param(name, {"type": "boolean"}, description, lambda raw: parse_boolean(name, raw))


PARAMS: tuple[Param, ...] = (
    _integer("downsample", 0, MAX_DOWNSAMPLE, "Tier: number of halvings of width and height. Default 0."),
    _integer("quality", 0, 100, "JPEG quality 0-100. Default 100."),
    _integer("left", 0, MAX_COORDINATE, "Left column of the region, full-resolution pixels. Default SubImage.x."),
    _integer("top", 0, MAX_COORDINATE, "Top row of the region, full-resolution pixels. Default SubImage.y."),
    _integer(
        "width",
        1,
        MAX_COORDINATE,
        "Output columns, tier pixels. Default floor(SubImage.width / 2**downsample).",
    ),
    _integer(
        "height",
        1,
        MAX_COORDINATE,
        "Output rows, tier pixels. Default floor(SubImage.height / 2**downsample).",
    ),
    _boolean("downsample_dimensions", "When true, width and height are full-resolution values."),
    _boolean("expression", "Return the expression mask layer."),
    _boolean("projection", "Return the projection layer."),
    _boolean("annotation", "Return the annotation layer of an atlas plate."),
    _integer("atlas", 1, 2**63 - 1, "Atlas id whose annotation to return (default: the lowest)."),
    _boolean("tumor_feature_annotation", "Return the tumor feature annotation layer."),
    _boolean("tumor_feature_boundary", "Return the tumor feature boundary layer."),
    Param("view", {"type": "string", "enum": [k.value for k in _VIEWS]}, "Layer to return.", parse_view),
    Param(
        "range",
        {"type": "string", "pattern": r"^\d+(,\d+){5}$"},
        "Per-channel window rl,ru,gl,gu,bl,bu on the native sample scale (0-4095 for 12-bit).",
        parse_range,
    ),
    Param(
        "contrast",
        {"type": "string", "examples": ["0.5,1"]},
        "gain,bias: out = clip(gain * in + bias) on the 0-1 scale, after windowing.",
        parse_contrast,
    ),
    Param(
        "rgb",
        {"type": "string", "examples": ["0.25,0.5,1"]},
        "r,g,b weights 0-1 multiplying each channel after windowing and contrast.",
        parse_rgb,
    ),
    Param(
        "colormap",
        {"type": "string", "examples": ["0.5,0.9,0,256,4", "hotmetal"]},
        "gain,lower_threshold,input_min,input_max,palette (id or name), or a bare palette name.",
        parse_colormap,
    ),
    Param(
        "format",
        {"type": "string", "enum": sorted(_FORMATS)},
        "Output encoding: jpeg (default, the Allen output), png (8-bit lossless) or tiff (native depth).",
        parse_format,
    ),
)
_BY_NAME = {param.name: param for param in PARAMS}
#: The display filters, which the IIIF Image API routes accept as query parameters too.
DISPLAY_PARAMS = ("range", "contrast", "rgb", "colormap")
_DISPLAY = {name: _BY_NAME[name] for name in DISPLAY_PARAMS}
_LAYER_FLAGS = {
    "expression": LayerKind.EXPRESSION,
    "projection": LayerKind.PROJECTION,
    "annotation": LayerKind.ANNOTATION,
    "tumor_feature_annotation": LayerKind.TUMOR_FEATURE_ANNOTATION,
    "tumor_feature_boundary": LayerKind.TUMOR_FEATURE_BOUNDARY,
}


def openapi_parameters() -> list[dict[str, Any]]:
    """The query parameters in OpenAPI form, for the routes' `openapi_extra`."""
    return [
        {"name": p.name, "in": "query", "required": False, "schema": p.schema, "description": p.description}
        for p in PARAMS
    ]


def split_image_id(raw: str) -> tuple[int, list[tuple[str, str]]]:
    """The image id of a path segment, and options written after it with '&' (seed form)."""
    head, _, tail = raw.partition("&")
    if not _DECIMAL.fullmatch(head) or int(head) == 0 or int(head) >= 2**63:
        raise InvalidRequest(f"image id must be a positive integer, got {head!r}")
    return int(head), parse_qsl(tail, keep_blank_values=True) if tail else []


#: Parameters that are `DownloadOptions` fields of the same name (the layer flags and `view` become `view`).
_OPTION_FIELDS = frozenset(field.name for field in dataclasses.fields(DownloadOptions)) - {"view"}


def parse_options(items: Iterable[tuple[str, str]]) -> DownloadOptions:
    """Download options from (name, raw value) pairs, strictly validated."""
    values = _parse(items, _BY_NAME)
    given = {name: value for name, value in values.items() if name in _OPTION_FIELDS}
    return DownloadOptions(view=_requested_view(values), **given)  # what is not given keeps its default


def parse_display_options(items: Iterable[tuple[str, str]]) -> DisplayOptions:
    """Only the display filters (`DISPLAY_PARAMS`), strictly validated as `parse_options` does."""
    values = _parse(items, _DISPLAY)
    return DisplayOptions(values.get("range"), values.get("contrast"), values.get("rgb"), values.get("colormap"))


def _parse(items: Iterable[tuple[str, str]], table: dict[str, Param]) -> dict[str, Any]:
    """Parsed values by name; an unknown or repeated name is an error that lists the accepted ones."""
    values: dict[str, Any] = {}
    unknown: list[str] = []
    for name, raw in items:
        param = table.get(name)
        if param is None:
            unknown.append(name)
            continue
        if name in values:
            raise InvalidRequest(f"parameter {name} is given more than once")
        values[name] = param.parse(raw)
    if unknown:
        raise InvalidRequest(f"unknown parameter(s): {', '.join(sorted(set(unknown)))}; accepted: {', '.join(table)}")
    return values


def _requested_view(values: dict[str, Any]) -> LayerKind:
    """The single layer asked for by `view` and the boolean flags; several different ones conflict."""
    asked = {kind for flag, kind in _LAYER_FLAGS.items() if values.get(flag)}
    if "view" in values:
        asked.add(values["view"])
    if len(asked) > 1:
        names = ", ".join(sorted(kind.value for kind in asked))
        raise InvalidRequest(f"conflicting views requested: {names}; ask for one layer at a time")
    return asked.pop() if asked else LayerKind.PRIMARY
