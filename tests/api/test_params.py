from __future__ import annotations

import pytest

from tierserve.api.params import openapi_parameters, parse_options, split_image_id
from tierserve.core.windowing import ChannelWindow
from tierserve.errors import InvalidRequest
from tierserve.layers import LayerKind


def test_defaults() -> None:
    options = parse_options([])
    assert options.downsample == 0 and options.quality == 100
    assert options.left is None and options.width is None
    assert options.view is LayerKind.PRIMARY and options.range is None


def test_every_option_parses() -> None:
    options = parse_options(
        [
            ("downsample", "3"),
            ("quality", "50"),
            ("left", "6174"),
            ("top", "2282"),
            ("width", "1000"),
            ("height", "999"),
            ("downsample_dimensions", "TRUE"),
            ("range", "0,923,0,987,0,4095"),
            ("atlas", "2"),
        ]
    )
    assert (options.downsample, options.quality, options.left, options.top) == (3, 50, 6174, 2282)
    assert (options.width, options.height, options.downsample_dimensions) == (1000, 999, True)
    assert options.range == ChannelWindow(((0, 923), (0, 987), (0, 4095)))
    assert options.atlas == 2


@pytest.mark.parametrize(
    ("items", "view"),
    [
        ([("expression", "true")], LayerKind.EXPRESSION),
        ([("view", "expression"), ("expression", "1")], LayerKind.EXPRESSION),
        ([("projection", "true")], LayerKind.PROJECTION),
        ([("view", "projection")], LayerKind.PROJECTION),
        ([("annotation", "true"), ("atlas", "1")], LayerKind.ANNOTATION),
        ([("tumor_feature_annotation", "true")], LayerKind.TUMOR_FEATURE_ANNOTATION),
        ([("view", "tumor_feature_boundary")], LayerKind.TUMOR_FEATURE_BOUNDARY),
        ([("expression", "false"), ("projection", "0")], LayerKind.PRIMARY),
    ],
)
def test_views(items: list[tuple[str, str]], view: LayerKind) -> None:
    assert parse_options(items).view is view


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ([("downsample", "-1")], "downsample must be a non-negative integer, got '-1'"),
        ([("downsample", "1.5")], "downsample must be a non-negative integer"),
        ([("downsample", "33")], "downsample must be between 0 and 32"),
        ([("quality", "101")], "quality must be between 0 and 100, got 101"),
        ([("quality", "")], "quality must be a non-negative integer, got ''"),
        ([("left", " 5")], "left must be a non-negative integer"),
        ([("left", "+5")], "left must be a non-negative integer"),
        ([("width", "0")], "width must be between 1 and"),
        ([("height", "99999999999999999999")], "height must be a non-negative integer"),
        ([("expression", "yes")], "expression must be true or false, got 'yes'"),
        ([("view", "raw")], "view must be one of expression, projection"),
        ([("range", "0,1,2")], "range must be 6 comma-separated"),
        ([("range", "0,1,2,3,4,x")], "range must be 6 comma-separated"),
        ([("range", "5,5,0,1,0,1")], "range for red must satisfy 0 <= lower < upper"),
        ([("range", "0,1,9,3,0,1")], "range for green"),
        ([("range", "0,1,0,1,0,70000")], "range for blue"),
        ([("downsample", "1"), ("downsample", "2")], "parameter downsample is given more than once"),
        ([("fileout", "x.jpg"), ("zoom", "1")], "unknown parameter(s): fileout, zoom"),
        ([("expression", "true"), ("projection", "true")], "conflicting views requested: expression, projection"),
        ([("view", "projection"), ("expression", "true")], "conflicting views"),
    ],
)
def test_bad_values_name_the_parameter(items: list[tuple[str, str]], message: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        parse_options(items)
    assert message in raised.value.message


def test_split_image_id_accepts_the_seed_ampersand_form() -> None:
    assert split_image_id("71592261") == (71592261, [])
    assert split_image_id("71592261&downsample=3&quality=50") == (71592261, [("downsample", "3"), ("quality", "50")])


@pytest.mark.parametrize("raw", ["abc", "-1", "0", "1.0", "", "12abc", "99999999999999999999"])
def test_split_image_id_rejects_non_ids(raw: str) -> None:
    with pytest.raises(InvalidRequest, match="image id must be a positive integer"):
        split_image_id(raw)


def test_openapi_lists_every_parameter() -> None:
    names = [p["name"] for p in openapi_parameters()]
    assert names[:6] == ["downsample", "quality", "left", "top", "width", "height"]
    assert {"range", "view", "atlas", "downsample_dimensions", "colormap"} <= set(names)
