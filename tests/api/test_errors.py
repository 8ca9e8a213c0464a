"""Every error case gets the right status and a JSON body {"success": false, "msg": ...}."""

from __future__ import annotations

import io

import httpx2
import pytest
from PIL import Image

from tierserve.core.encode import FORMATS
from tierserve.errors import InvalidRequest

CASES = [
    ("/api/v2/section_image_download/abc", 400, "image id must be a positive integer, got 'abc'"),
    ("/api/v2/section_image_download/-5", 400, "image id must be a positive integer"),
    ("/api/v2/section_image_download/1.5", 400, "image id must be a positive integer"),
    ("/api/v2/section_image_download/424242", 404, "no SectionImage with id 424242"),
    ("/api/v2/atlas_image_download/424242", 404, "no AtlasImage with id 424242"),
    ("/api/v2/image_download/424242", 404, "no SubImage with id 424242"),
    ("/api/v2/section_image_download/2001?downsample=-1", 400, "downsample must be a non-negative integer"),
    ("/api/v2/section_image_download/2001?downsample=abc", 400, "downsample must be a non-negative integer"),
    ("/api/v2/section_image_download/2001?downsample=11", 400, "the largest downsample is 10"),
    ("/api/v2/section_image_download/2001?quality=101", 400, "quality must be between 0 and 100"),
    ("/api/v2/section_image_download/2001?left=-3", 400, "left must be a non-negative integer"),
    ("/api/v2/section_image_download/2001?width=0", 400, "width must be between 1"),
    ("/api/v2/section_image_download/2001?width=70000", 400, "exceeds the JPEG limit of 65535"),
    ("/api/v2/section_image_download/2001?height=1e3", 400, "height must be a non-negative integer"),
    ("/api/v2/section_image_download/2001?range=0,923,0,987", 400, "range must be 6 comma-separated"),
    ("/api/v2/section_image_download/2001?range=9,3,0,1,0,1", 400, "range for red must satisfy"),
    ("/api/v2/section_image_download/2001?expression=maybe", 400, "expression must be true or false"),
    ("/api/v2/section_image_download/2001?expression=", 400, "expression must be true or false"),
    ("/api/v2/section_image_download/2001?bogus=1", 400, "unknown parameter(s): bogus"),
    ("/api/v2/section_image_download/2001?quality=5&quality=6", 400, "quality is given more than once"),
    ("/api/v2/section_image_download/2001?colormap=0.5,0.9,0,256", 400, "colormap must be a palette name or"),
    ("/api/v2/section_image_download/2001?colormap=rainbow", 400, "unknown colormap palette 'rainbow'"),
    ("/api/v2/section_image_download/2001?colormap=0.5,0.9,0,256,12", 400, "unknown colormap palette '12'"),
    ("/api/v2/section_image_download/2001?colormap=2,0.9,0,256,4", 400, "colormap gain must be between 0 and 1"),
    ("/api/v2/section_image_download/2001?colormap=0.5,0.9,9,3,4", 400, "input_min and input_max must satisfy"),
    ("/api/v2/section_image_download/2001?rgb=0.25,0.5", 400, "rgb must be 3 comma-separated numbers"),
    ("/api/v2/section_image_download/2001?rgb=0.25,0.5,x", 400, "rgb must be 3 comma-separated numbers"),
    ("/api/v2/section_image_download/2001?rgb=0.25,0.5,1.5", 400, "rgb blue weight must be between 0 and 1"),
    ("/api/v2/section_image_download/2001?contrast=0.5", 400, "contrast must be 2 comma-separated numbers"),
    ("/api/v2/section_image_download/2001?contrast=0.5,nan", 400, "contrast must be 2 comma-separated numbers"),
    ("/api/v2/section_image_download/2001?contrast=0.5,3", 400, "contrast bias must be between -1 and 1"),
    ("/api/v2/section_image_download/2001?format=gif", 400, "format must be jpeg, png or tiff"),
    ("/api/v2/section_image_download/2001?expression=true&projection=true", 400, "conflicting views"),
    ("/api/v2/no_such_endpoint/1", 404, "Not Found"),
]


@pytest.mark.parametrize(("url", "status", "message"), CASES)
def test_error_status_and_body(http: httpx2.Client, url: str, status: int, message: str) -> None:
    response = http.get(url)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["success"] is False
    assert message in body["msg"]


def test_wrong_method_is_a_json_405(http: httpx2.Client) -> None:
    response = http.post("/api/v2/section_image_download/2001")
    assert response.status_code == 405
    assert response.json()["success"] is False


def test_openapi_schema_is_published(http: httpx2.Client) -> None:
    schema = http.get("/openapi.json").json()
    operation = schema["paths"]["/api/v2/section_image_download/{image_id}"]["get"]
    names = {p["name"] for p in operation["parameters"]}
    assert {"image_id", "downsample", "quality", "left", "top", "width", "height", "range", "view"} <= names
    assert set(schema["paths"]) >= {
        "/api/v2/section_image_download/{image_id}",
        "/api/v2/atlas_image_download/{image_id}",
        "/api/v2/projection_image_download/{image_id}",
        "/api/v2/image_download/{image_id}",
    }


@pytest.mark.parametrize(
    "url",
    [
        "/api/v2/section_image_download/2001?downsample=2%0A",
        "/api/v2/section_image_download/2001%0A",
        "/api/v2/section_image_download/2001?rgb=1,1,1%0A",
        "/api/v2/data/query.json%0A?q=model::SectionImage",
    ],
)
def test_trailing_newlines_are_not_accepted(http: httpx2.Client, url: str) -> None:
    response = http.get(url)
    assert response.status_code in (400, 404)
    assert response.json()["success"] is False


def test_filename_cannot_inject_headers(http: httpx2.Client) -> None:
    response = http.get("/api/v2/data/SectionImage/2001.json?filename=a.json%0D%0AX-Evil:%201")
    assert response.status_code == 200
    assert response.headers["content-disposition"] == "inline; filename=query.json"
    assert "x-evil" not in response.headers


@pytest.mark.parametrize(("fmt", "media_type"), [("png", "image/png"), ("tiff", "image/tiff")])
def test_png_and_tiff_outputs_are_not_held_to_the_jpeg_side_limit(
    http: httpx2.Client, fmt: str, media_type: str
) -> None:
    response = http.get(f"/api/v2/section_image_download/2001?width=70000&height=8&format={fmt}")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == media_type
    with Image.open(io.BytesIO(response.content)) as image:
        assert image.size == (1500, 8)  # clipped to the 1500-pixel-wide image


def test_each_format_names_its_own_side_limit() -> None:
    FORMATS["jpeg"].check_size(65_535, 1)
    with pytest.raises(InvalidRequest, match="exceeds the JPEG limit of 65535 pixels per side"):
        FORMATS["jpeg"].check_size(65_536, 1)
    FORMATS["png"].check_size(2**31 - 1, 1)
    with pytest.raises(InvalidRequest, match="exceeds the PNG limit of 2147483647 pixels per side"):
        FORMATS["png"].check_size(1, 2**31)
