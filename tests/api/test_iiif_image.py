"""The IIIF Image API routes (3.0 and 2.1) on the test collection: info.json, redirects, headers,
errors, and pixels against the Allen routes and independent NumPy computations."""

from __future__ import annotations

import io
from typing import Any

import httpx2
import imagecodecs
import numpy as np
import numpy.typing as npt
import pytest
import tifffile
from fastapi.testclient import TestClient
from PIL import Image

from tests.conftest import EQUALIZATION, SUB_RECT, Collection
from tests.core.test_resample import area_mean
from tests.images import psnr, window
from tierserve.api.app import create_app
from tierserve.api.state import AppState
from tierserve.core.orientation import Orientation, orient_array
from tierserve.errors import Unavailable

LD_3 = 'application/ld+json;profile="http://iiif.io/api/image/3/context.json"'
LD_2 = 'application/ld+json;profile="http://iiif.io/api/image/2/context.json"'


def decode(response: httpx2.Response, media_type: str = "image/png") -> npt.NDArray[np.uint8]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == media_type
    return np.asarray(Image.open(io.BytesIO(response.content)))


def pixels(http: httpx2.Client, url: str) -> npt.NDArray[np.uint8]:
    return decode(http.get(url))


def info(http: httpx2.Client, url: str, **headers: str) -> tuple[httpx2.Response, dict[str, Any]]:
    response = http.get(url, headers=headers)
    assert response.status_code == 200, response.text
    return response, response.json()


def test_info_json_3(http: httpx2.Client, collection: Collection) -> None:
    response, document = info(http, "/iiif/3/2001/info.json")
    assert response.headers["content-type"] == LD_3  # no Accept header: JSON-LD (3.0 section 5.1)
    assert next(iter(document)) == "@context"
    assert document["id"] == str(response.url).removesuffix("/info.json")
    assert document["id"].endswith("/iiif/3/2001")
    assert document["type"] == "ImageService3"
    assert document["protocol"] == "http://iiif.io/api/image"
    assert document["profile"] == "level2"
    assert (document["width"], document["height"]) == (1500, 1100)
    assert document["maxArea"] == collection.settings.max_output_pixels
    assert (document["maxWidth"], document["maxHeight"]) == (65535, 65535)
    # three stored levels: 1500 x 1100, 750 x 550, 375 x 275
    assert document["sizes"] == [
        {"width": 375, "height": 275},
        {"width": 750, "height": 550},
        {"width": 1500, "height": 1100},
    ]
    assert document["tiles"] == [{"width": 256, "height": 256, "scaleFactors": [1, 2, 4]}]
    assert document["extraFormats"] == ["tif", "webp"]
    assert set(document["extraQualities"]) == {"color", "gray", "bitonal"}
    assert {"mirroring", "sizeUpscaling", "canonicalLinkHeader", "profileLinkHeader"} <= set(document["extraFeatures"])


def test_info_json_2(http: httpx2.Client) -> None:
    response, document = info(http, "/iiif/2/2001/info.json")
    assert response.headers["content-type"] == "application/json"  # 2.1: JSON-LD only when asked
    assert document["@context"] == "http://iiif.io/api/image/2/context.json"
    assert document["@id"] == str(response.url).removesuffix("/info.json")
    assert document["profile"][0] == "http://iiif.io/api/image/2/level2.json"
    extras = document["profile"][1]
    assert {"mirroring", "sizeAboveFull", "regionSquare"} <= set(extras["supports"])
    assert extras["maxArea"] > 0 and extras["formats"] == ["tif", "webp"]
    assert document["tiles"][0]["scaleFactors"] == [1, 2, 4]


@pytest.mark.parametrize(
    ("version", "accept", "media_type"),
    [
        (3, "application/ld+json", LD_3),
        (3, f"{LD_3}, application/json;q=0.5", LD_3),
        (3, "*/*", LD_3),
        (3, "application/json", "application/json"),
        (2, "application/ld+json", LD_2),
        (2, "*/*", "application/json"),
        (2, "application/ld+json;q=0", "application/json"),
    ],
)
def test_info_json_media_type_follows_accept(http: httpx2.Client, version: int, accept: str, media_type: str) -> None:
    response, _ = info(http, f"/iiif/{version}/2001/info.json", accept=accept)
    assert response.headers["content-type"] == media_type
    assert "accept" in response.headers["vary"].lower()


def test_the_sub_rectangle_section_is_the_iiif_image(http: httpx2.Client) -> None:
    _, document = info(http, "/iiif/3/2002/info.json")
    assert (document["width"], document["height"]) == SUB_RECT[2:]
    whole = pixels(http, "/iiif/3/2002/full/max/0/default.png")
    assert np.array_equal(whole, pixels(http, "/api/v2/section_image_download/2002?format=png"))


@pytest.mark.parametrize("path", ["/iiif/3/2001", "/iiif/3/2001/", "/iiif/2/3001~annotation-2"])
def test_the_base_uri_redirects_to_info_json(http: httpx2.Client, path: str) -> None:
    response = http.get(path, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == str(response.url).rstrip("/") + "/info.json"


def test_cors_headers_on_documents_images_and_errors(http: httpx2.Client) -> None:
    for url in ["/iiif/3/2001/info.json", "/iiif/3/2001/full/64,/0/default.jpg", "/iiif/3/2001/full/0,/0/default.jpg"]:
        response = http.get(url, headers={"Origin": "https://viewer.example.org"})
        assert response.headers["access-control-allow-origin"] == "*", url


def test_images_carry_canonical_and_profile_links(http: httpx2.Client) -> None:
    response = http.get("/iiif/3/2001/pct:0,0,50,50/!300,300/!90/gray.jpg?contrast=1.5,0")
    assert response.status_code == 200
    base = str(response.url).split("/iiif/3/")[0]
    canonical = f"{base}/iiif/3/2001/0,0,750,550/300,220/!90/gray.jpg?contrast=1.5,0"
    assert response.headers["link"] == (
        f'<{canonical}>;rel="canonical",<http://iiif.io/api/image/3/level2.json>;rel="profile"'
    )
    response = http.get("/iiif/2/2001/full/full/0/default.png")
    assert response.headers["link"].startswith(f'<{base}/iiif/2/2001/full/full/0/default.png>;rel="canonical",')
    response = http.get("/iiif/2/2001/0,0,1500,1100/750,/0/default.png")
    assert f"<{base}/iiif/2/2001/full/750,/0/default.png>" in response.headers["link"]


def test_etag_304_and_head(http: httpx2.Client) -> None:
    url = "/iiif/3/2001/512,0,512,512/256,/0/default.jpg"
    response = http.get(url)
    tag = response.headers["etag"]
    assert response.headers["cache-control"] == "public, max-age=86400"
    assert http.get("/iiif/3/2001/512,0,512,512/256,256/0/color.jpg").headers["etag"] == tag  # same output
    assert http.get(url.replace("default", "gray")).headers["etag"] != tag
    revalidated = http.get(url, headers={"If-None-Match": tag})
    assert (revalidated.status_code, revalidated.content) == (304, b"")
    head = http.head(url)
    assert (head.status_code, head.content, head.headers["etag"]) == (200, b"", tag)
    assert head.headers["link"] == response.headers["link"]
    document = http.get("/iiif/3/2001/info.json")
    assert http.get("/iiif/3/2001/info.json", headers={"If-None-Match": document.headers["etag"]}).status_code == 304
    assert http.head("/iiif/3/2001/info.json").headers["content-length"] == str(len(document.content))


@pytest.mark.parametrize(
    ("url", "status", "message"),
    [
        ("/iiif/3/424242/info.json", 404, "no SubImage with id 424242"),
        ("/iiif/3/9b2f0c84-d1b0-11e1/info.json", 404, "identifier"),
        ("/iiif/3/2001~projection/full/max/0/default.jpg", 404, "no projection layer"),
        ("/iiif/3/3001~annotation-7/info.json", 404, "atlas 7"),
        ("/iiif/3/2001~primary/info.json", 404, "identifier"),
        ("/iiif/3/a/b/full/max/0/default.jpg", 404, ""),
        ("/iiif/3/2001/full/max/0", 404, "no IIIF Image API resource"),
        ("/iiif/3/2001/nonsense/max/0/default.jpg", 400, "region"),
        ("/iiif/3/2001/full/full/0/default.jpg", 400, "size full"),
        ("/iiif/3/2001/full/1600,/0/default.jpg", 400, "upscaling needs ^"),
        ("/iiif/3/2001/full/max/45/default.jpg", 400, "rotation"),
        ("/iiif/3/2001/full/max/0/sepia.jpg", 400, "quality"),
        ("/iiif/3/2001/full/max/0/default.gif", 400, "format"),
        ("/iiif/3/2001/2000,0,10,10/max/0/default.jpg", 400, "no pixel inside"),
        ("/iiif/3/2001/full/^100000,/0/default.jpg", 400, "maxWidth"),
        ("/iiif/3/2001/full/max/0/default.jpg?downsample=2", 400, "unknown parameter(s): downsample"),
        ("/iiif/3/2001/full/max/0/default.jpg?range=5,1,0,9,0,9", 400, "range"),
        ("/iiif/2/2001/full/^max/0/default.jpg", 400, "size"),
    ],
)
def test_errors_are_iiif_statuses_with_a_plain_message(
    http: httpx2.Client, url: str, status: int, message: str
) -> None:
    response = http.get(url)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert message in response.text
    assert "success" not in response.text
    assert "etag" not in response.headers


def test_output_pixels_beyond_max_output_pixels_are_refused(collection: Collection) -> None:
    settings = collection.settings.model_copy(update={"max_output_pixels": 500_000})
    with TestClient(create_app(settings)) as small:
        document = small.get("/iiif/3/2001/info.json").json()
        assert document["maxArea"] == 500_000
        assert [size["width"] for size in document["sizes"]] == [375, 750]  # 1500 x 1100 is beyond it
        response = small.get("/iiif/3/2001/full/1000,/0/default.jpg")
        assert response.status_code == 400 and "maxArea=500000" in response.text
        response = small.get("/iiif/3/2001/full/max/0/default.png")  # max fits the limit
        assert decode(response).shape[:2] == (605, 825)  # 499,125 pixels, the aspect ratio kept


def test_other_methods_are_refused(http: httpx2.Client) -> None:
    response = http.post("/iiif/3/2001/info.json")
    assert response.status_code == 405 and response.headers["allow"] == "GET, HEAD"


@pytest.mark.parametrize(
    ("identifier", "allen"),
    [
        ("2001~expression", "section_image_download/2001?view=expression"),
        ("2101~projection", "projection_image_download/2101?projection=true"),
        ("3001", "atlas_image_download/3001"),
        ("3001~annotation-1", "atlas_image_download/3001?annotation=true&atlas=1"),
        ("3001~annotation-2", "atlas_image_download/3001?annotation=true&atlas=2"),
    ],
)
def test_layers_are_identifiers(http: httpx2.Client, identifier: str, allen: str) -> None:
    separator = "&" if "?" in allen else "?"
    expected = pixels(http, f"/api/v2/{allen}{separator}downsample=1&format=png")
    assert np.array_equal(pixels(http, f"/iiif/3/{identifier}/full/pct:50/0/default.png"), expected)


def test_stored_level_tiles_are_the_allen_tiers(http: httpx2.Client) -> None:
    tile = pixels(http, "/iiif/3/2001/512,512,512,512/256,/0/default.png")
    tier = "/api/v2/section_image_download/2001?format=png&downsample"
    allen = pixels(http, f"{tier}=1&left=512&top=512&width=256&height=256")
    assert np.array_equal(tile, allen)
    # the last column of tiles at scale factor 4 (1500 - 1024 = 476 pixels wide: 119 tier pixels)
    edge = pixels(http, "/iiif/2/2001/1024,0,476,1024/119,/0/default.png")
    allen = pixels(http, f"{tier}=2&left=1024&top=0&width=119&height=256")
    assert np.array_equal(edge, allen)


@pytest.mark.parametrize(
    ("region", "size", "box"),
    [
        ("full", "600,", (0, 0, 1500, 1100, 600, 440)),
        ("full", "!200,200", (0, 0, 1500, 1100, 200, 147)),
        ("full", "1111,333", (0, 0, 1500, 1100, 1111, 333)),
        ("pct:13.3,21.7,40,50", "pct:37", (200, 239, 600, 550, 222, 204)),
        ("333,171,777,555", "500,", (333, 171, 777, 555, 500, 357)),
        ("square", "max", (200, 0, 1100, 1100, 1100, 1100)),
    ],
)
def test_resampled_sizes_are_area_averages_of_the_full_resolution_image(
    http: httpx2.Client, collection: Collection, region: str, size: str, box: tuple[int, ...]
) -> None:
    """The reference averages the full-resolution source over each output pixel's area; the server
    averages the stored level at least as dense (block means, JPEG tiles at quality 95)."""
    got = pixels(http, f"/iiif/3/2001/{region}/{size}/0/default.png")
    x, y, w, h, out_w, out_h = box
    expected = area_mean(collection.rgb, x, y, w, h, out_w, out_h)
    assert got.shape == expected.shape
    assert psnr(got, expected) > 38


def test_deep_layers_are_resampled_natively_then_windowed_by_their_equalization(
    http: httpx2.Client, collection: Collection
) -> None:
    """Averaged on the native 12-bit samples of the level at least as dense (tier 1, lossless), then
    windowed; the level's own block means make it differ from the full-resolution average."""
    got = pixels(http, "/iiif/3/2101/100,100,1000,700/333,/0/default.png")
    response = http.get("/api/v2/section_image_download/2101?downsample=1&format=tiff")
    tier1 = tifffile.imread(io.BytesIO(response.content)).astype(np.int64)
    from_level = window(area_mean(tier1, 50, 50, 500, 350, 333, 233), EQUALIZATION)
    assert got.shape == (233, 333, 3)
    assert np.abs(got.astype(int) - from_level).max() <= 1  # the native average is rounded once
    from_full = window(area_mean(collection.fluorescence, 100, 100, 1000, 700, 333, 233), EQUALIZATION)
    assert psnr(got, from_full) > 40


def test_enlarging_repeats_the_acquired_pixels(http: httpx2.Client) -> None:
    source = pixels(http, "/api/v2/section_image_download/2001?left=40&top=30&width=20&height=15&format=png")
    enlarged = pixels(http, "/iiif/3/2001/40,30,20,15/^80,60/0/default.png")
    assert np.array_equal(enlarged, np.repeat(np.repeat(source, 4, axis=0), 4, axis=1))
    assert np.array_equal(pixels(http, "/iiif/2/2001/40,30,20,15/80,60/0/default.png"), enlarged)


@pytest.mark.parametrize("rotation", ["90", "180", "270", "!0", "!90", "!180", "!270"])
@pytest.mark.parametrize("size", ["max", "150,"])
def test_rotation_and_mirroring(http: httpx2.Client, rotation: str, size: str) -> None:
    upright = pixels(http, f"/iiif/3/2001/100,50,300,200/{size}/0/default.png")
    turned = pixels(http, f"/iiif/3/2001/100,50,300,200/{size}/{rotation}/default.png")
    orientation = Orientation(int(rotation.lstrip("!")) // 90, rotation.startswith("!"))
    assert np.array_equal(turned, orient_array(upright, orientation))


def test_gray_and_bitonal_are_the_luma(http: httpx2.Client) -> None:
    colour = pixels(http, "/iiif/3/2001/pct:20,20,30,30/200,/0/color.png").astype(np.float64)
    luma = np.floor(colour @ np.array([0.299, 0.587, 0.114]) + 0.5)
    grey = pixels(http, "/iiif/3/2001/pct:20,20,30,30/200,/0/gray.png")
    bitonal = pixels(http, "/iiif/3/2001/pct:20,20,30,30/200,/0/bitonal.png")
    assert grey.ndim == 2 and np.abs(grey - luma).max() <= 1
    assert set(np.unique(bitonal)) <= {0, 255}
    assert np.array_equal(bitonal == 255, grey >= 128)
    jpeg = decode(http.get("/iiif/3/2001/pct:20,20,30,30/200,/0/gray.jpg"), "image/jpeg")
    assert jpeg.ndim == 2 and psnr(jpeg, grey.astype(np.float64)) > 35


def test_default_jpg_is_encoded_at_the_iiif_quality(http: httpx2.Client, collection: Collection) -> None:
    url = "/iiif/3/2001/256,256,256,256/max/0/default"
    exact = pixels(http, f"{url}.png")
    quality = collection.settings.iiif_jpeg_quality
    assert quality == 90
    assert http.get(f"{url}.jpg").content == imagecodecs.jpeg8_encode(exact, level=quality, subsampling="444")


@pytest.mark.parametrize(("extension", "media_type"), [("tif", "image/tiff"), ("webp", "image/webp")])
def test_tif_and_webp(http: httpx2.Client, extension: str, media_type: str) -> None:
    got = decode(http.get(f"/iiif/3/2001/full/300,/0/default.{extension}"), media_type)
    assert got.shape == (220, 300, 3)
    reference = pixels(http, "/iiif/3/2001/full/300,/0/default.png")
    assert psnr(got, reference.astype(np.float64)) > (99 if extension == "tif" else 30)


@pytest.mark.parametrize(
    "display", ["range=0,600,0,600,0,4095", "colormap=hotmetal", "contrast=1.8,-0.2&rgb=0.25,0.5,1"]
)
def test_display_options_have_the_allen_meaning(http: httpx2.Client, display: str) -> None:
    allen = pixels(http, f"/api/v2/section_image_download/2101?downsample=1&format=png&{display}")
    iiif = pixels(http, f"/iiif/3/2101/full/pct:50/0/default.png?{display}")
    assert np.array_equal(iiif, allen)


def test_render_limits_are_503_with_retry_after(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    state: AppState = client.app.state.tierserve  # type: ignore[attr-defined]

    async def busy(*_args: object) -> None:
        message = "all 4 render threads are busy and max_queued_renders=0 requests are already waiting"
        raise Unavailable(message, 1, "max_queued_renders")

    monkeypatch.setattr(state.renderer, "respond", busy)
    response = client.get("/iiif/3/2001/full/max/0/default.jpg")  # not a tiny read: a render thread's
    assert (response.status_code, response.headers["retry-after"]) == (503, "1")
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.text.startswith("all 4 render threads are busy")
