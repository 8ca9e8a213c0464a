"""The download endpoints' semantics (docs/api.md), checked on decoded pixels against NumPy."""

from __future__ import annotations

import random

import httpx2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.conftest import EQUALIZATION, SUB_RECT, Collection
from tests.images import decode_jpeg, expected_region, psnr, window

#: 8-bit layers are stored as JPEG Q95 tiles (4:2:0), then encoded again: looser than 12-bit data.
PSNR_RGB = 35.0
PSNR_12_BIT = 45.0


def get_image(http: httpx2.Client | TestClient, url: str) -> np.ndarray:
    response = http.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/jpeg"
    return decode_jpeg(response.content)


def test_whole_image_by_default(http: httpx2.Client, collection: Collection) -> None:
    got = get_image(http, "/api/v2/section_image_download/2001")
    assert got.shape == (1100, 1500, 3)
    assert psnr(got, collection.rgb.astype(float)) > PSNR_RGB


def test_headers(http: httpx2.Client) -> None:
    response = http.get("/api/v2/section_image_download/2001?downsample=4")
    assert response.headers["content-type"] == "image/jpeg"
    assert response.headers["content-disposition"] == "inline; filename=2001.jpg"
    assert int(response.headers["content-length"]) == len(response.content)


def test_sub_image_defaults_to_its_rectangle(http: httpx2.Client, collection: Collection) -> None:
    x, y, w, h = SUB_RECT
    got = get_image(http, "/api/v2/section_image_download/2002")
    assert got.shape == (h, w, 3)
    assert psnr(got, collection.rgb[y : y + h, x : x + w].astype(float)) > PSNR_RGB
    tier = get_image(http, "/api/v2/image_download/2002?downsample=3")
    assert tier.shape == (h >> 3, w >> 3, 3)
    assert psnr(tier, expected_region(collection.rgb, 3, x, y, w >> 3, h >> 3)) > PSNR_RGB


@pytest.mark.parametrize("d", [0, 1, 2, 3, 4, 7, 10])
def test_default_size_is_floor_of_section_over_scale(http: httpx2.Client, d: int) -> None:
    got = get_image(http, f"/api/v2/section_image_download/2001?downsample={d}")
    assert got.shape[:2] == (1100 >> d, 1500 >> d)


def test_random_regions_and_tiers_match_numpy(client: TestClient, collection: Collection) -> None:
    rng = random.Random(7)
    for _ in range(30):
        d = rng.randint(0, 10)
        left, top = rng.randrange(0, 1500), rng.randrange(0, 1100)
        width, height = rng.randint(1, 400), rng.randint(1, 300)
        url = f"/api/v2/section_image_download/2001?downsample={d}&left={left}&top={top}&width={width}&height={height}"
        expected = expected_region(collection.rgb, d, left, top, width, height)
        if expected.size == 0:
            assert client.get(url).status_code == 400
            continue
        got = get_image(client, url)
        assert got.shape == expected.shape, url
        assert psnr(got, expected) > PSNR_RGB, url


def test_seed_roi_example_is_full_resolution_left_top_and_tier_width(
    http: httpx2.Client, collection: Collection
) -> None:
    got = get_image(http, "/api/v2/section_image_download/2001?downsample=2&left=601&top=202&width=100&height=50")
    assert got.shape == (50, 100, 3)
    assert psnr(got, expected_region(collection.rgb, 2, 600, 200, 100, 50)) > PSNR_RGB


def test_downsample_dimensions_divides_explicit_width_and_height(http: httpx2.Client) -> None:
    got = get_image(
        http, "/api/v2/section_image_download/2001?downsample=2&width=800&height=401&downsample_dimensions=true"
    )
    assert got.shape[:2] == (100, 200)
    got = get_image(
        http, "/api/v2/section_image_download/2001?downsample=2&width=800&height=401&downsample_dimensions=false"
    )
    assert got.shape[:2] == (275, 375)  # clipped to the 375 x 275 tier


def test_region_past_the_edge_is_clipped(http: httpx2.Client, collection: Collection) -> None:
    got = get_image(http, "/api/v2/section_image_download/2001?left=1400&top=1000&width=500&height=500")
    assert got.shape == (100, 100, 3)
    assert psnr(got, collection.rgb[1000:, 1400:].astype(float)) > PSNR_RGB


def test_region_entirely_outside_is_400(http: httpx2.Client) -> None:
    response = http.get("/api/v2/section_image_download/2001?left=1500&top=0&width=10&height=10")
    assert response.status_code == 400
    assert response.json() == {
        "success": False,
        "msg": "region left=1500 top=0 width=10 height=10 at downsample=0 lies outside the 1500x1100 image",
    }


def test_quality_changes_the_encoding(http: httpx2.Client) -> None:
    sizes = {}
    for quality in (0, 10, 100):
        response = http.get(f"/api/v2/section_image_download/2001?downsample=1&quality={quality}")
        decode_jpeg(response.content)
        sizes[quality] = len(response.content)
    assert sizes[0] < sizes[10] < sizes[100] / 4


def test_seed_ampersand_form(http: httpx2.Client) -> None:
    got = get_image(http, "/api/v2/section_image_download/2001&downsample=3&quality=50")
    assert got.shape == (137, 187, 3)


def test_range_windows_12_bit_channels(http: httpx2.Client, collection: Collection) -> None:
    bounds = [(100, 3000), (0, 987), (2000, 4095)]
    flat = ",".join(str(v) for pair in bounds for v in pair)
    got = get_image(http, f"/api/v2/section_image_download/2101?range={flat}&downsample=2")
    assert psnr(got, window(expected_region(collection.fluorescence, 2, 0, 0, 325, 225), bounds)) > PSNR_12_BIT


def test_equalization_applies_without_range(http: httpx2.Client, collection: Collection) -> None:
    got = get_image(http, "/api/v2/projection_image_download/2101?downsample=1")
    expected = window(expected_region(collection.fluorescence, 1, 0, 0, 650, 450), EQUALIZATION)
    assert psnr(got, expected) > PSNR_12_BIT
    full_scale = window(expected_region(collection.fluorescence, 1, 0, 0, 650, 450), [(0, 4095)] * 3)
    assert psnr(got, full_scale) < PSNR_12_BIT - 10


def test_full_native_scale_without_equalization(http: httpx2.Client, collection: Collection) -> None:
    got = get_image(http, "/api/v2/section_image_download/2102?downsample=1")
    expected = window(expected_region(collection.fluorescence, 1, 0, 0, 650, 450), [(0, 4095)] * 3)
    assert psnr(got, expected) > PSNR_12_BIT


def test_range_on_8_bit_layers_uses_the_0_255_scale(http: httpx2.Client, collection: Collection) -> None:
    bounds = [(50, 200), (0, 255), (20, 240)]
    flat = ",".join(str(v) for pair in bounds for v in pair)
    got = get_image(http, f"/api/v2/section_image_download/2001?downsample=2&range={flat}")
    assert psnr(got, window(expected_region(collection.rgb, 2, 0, 0, 375, 275), bounds)) > PSNR_RGB - 5


@pytest.mark.parametrize("query", ["expression=true", "view=expression", "expression=1&view=expression"])
def test_expression_layer(http: httpx2.Client, collection: Collection, query: str) -> None:
    got = get_image(http, f"/api/v2/section_image_download/2001?downsample=1&{query}")
    assert psnr(got, expected_region(collection.expression, 1, 0, 0, 750, 550)) > PSNR_RGB - 5
    assert psnr(got, expected_region(collection.rgb, 1, 0, 0, 750, 550)) < 20


@pytest.mark.parametrize("query", ["projection=true", "view=projection"])
def test_grey_projection_layer_comes_back_as_rgb(http: httpx2.Client, collection: Collection, query: str) -> None:
    got = get_image(http, f"/api/v2/projection_image_download/2101?downsample=1&{query}")
    grey = expected_region(collection.projection[..., np.newaxis], 1, 0, 0, 650, 450)
    assert psnr(got, np.repeat(grey, 3, axis=2)) > PSNR_RGB


def test_annotation_per_atlas(http: httpx2.Client, collection: Collection) -> None:
    def annotation(query: str) -> np.ndarray:
        return get_image(http, f"/api/v2/atlas_image_download/3001?annotation=true{query}")

    for atlas in (1, 2):
        got = annotation(f"&atlas={atlas}")
        assert psnr(got, collection.annotations[atlas].astype(float)) > PSNR_RGB - 5
    assert psnr(annotation(""), collection.annotations[1].astype(float)) > PSNR_RGB - 5  # lowest atlas id
    plate = get_image(http, "/api/v2/atlas_image_download/3001?atlas=2")  # atlas alone: the plate
    assert psnr(plate, collection.plate.astype(float)) > PSNR_RGB


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("/api/v2/section_image_download/2001?view=projection", "image 2001 has no projection layer"),
        ("/api/v2/section_image_download/2002?expression=true", "image 2002 has no expression layer"),
        ("/api/v2/image_download/2001?view=tumor_feature_boundary", "image 2001 has no tumor_feature_boundary layer"),
        (
            "/api/v2/atlas_image_download/3001?annotation=true&atlas=7",
            "image 3001 has no annotation layer for atlas 7 (it has: 1, 2)",
        ),
        ("/api/v2/section_image_download/2001?annotation=true", "image 2001 has no annotation layer"),
    ],
)
def test_missing_layer_is_404_naming_it(http: httpx2.Client, url: str, message: str) -> None:
    response = http.get(url)
    assert response.status_code == 404
    assert response.json() == {"success": False, "msg": message}


def test_endpoints_take_ids_of_their_model(http: httpx2.Client) -> None:
    assert http.get("/api/v2/atlas_image_download/3001?downsample=3").status_code == 200
    assert http.get("/api/v2/image_download/3001?downsample=3").status_code == 200
    assert http.get("/api/v2/image_download/2001?downsample=3").status_code == 200
    response = http.get("/api/v2/section_image_download/3001")
    assert response.status_code == 404
    assert "no SectionImage with id 3001" in response.json()["msg"]
    assert http.get("/api/v2/atlas_image_download/2001").status_code == 404


def test_image_download_and_section_image_download_are_identical(http: httpx2.Client) -> None:
    a = http.get("/api/v2/section_image_download/2001?downsample=2&left=100&top=100&width=64&height=64")
    b = http.get("/api/v2/image_download/2001?downsample=2&left=100&top=100&width=64&height=64")
    assert (a.status_code, b.status_code) == (200, 200)
    assert a.headers["content-type"] == b.headers["content-type"] == "image/jpeg"
    assert decode_jpeg(a.content).shape == (64, 64, 3)
    assert a.content == b.content
