"""A JPEG request for exactly one whole stored tile at its stored quality (the collection is ingested at 95),
with nothing done to its pixels, is answered with the stored tile's stream; every other request is rendered,
and turning the setting off renders them all."""

from __future__ import annotations

from collections.abc import Iterator

import httpx2
import pytest
from fastapi.testclient import TestClient

from tests.conftest import Collection
from tests.images import decode_jpeg, psnr, stored_tile
from tierserve.api.app import create_app

SECTION = "/api/v2/section_image_download/2001"
STORED_QUALITY = 95


def primary_tile(collection: Collection, level: int, row: int, col: int) -> bytes:
    """Tile (row, col) of `level` of image 2001's primary layer, as stored (tierserve writes whole JFIF
    streams, no JPEGTables)."""
    [path] = (collection.settings.data_dir / "store" / "sub_images" / "2001").glob("*/primary.ome.tif")
    return stored_tile(path, level, row, col)


@pytest.fixture(scope="module")
def iiif_at_95(collection: Collection) -> Iterator[TestClient]:
    """The app with IIIF answers at the stored quality."""
    settings = collection.settings.model_copy(update={"iiif_jpeg_quality": STORED_QUALITY})
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture(scope="module")
def rendering(collection: Collection) -> Iterator[TestClient]:
    """The app with stored tiles turned off (TIERSERVE_TILE_PASSTHROUGH=false), IIIF at the stored quality."""
    update = {"tile_passthrough": False, "iiif_jpeg_quality": STORED_QUALITY}
    with TestClient(create_app(collection.settings.model_copy(update=update))) as client:
        yield client


@pytest.mark.parametrize(
    ("url", "level", "row", "col"),
    [
        (f"{SECTION}?left=256&top=256&width=256&height=256&quality=95", 0, 1, 1),
        (f"{SECTION}?left=1024&top=768&width=256&height=256&quality=95", 0, 3, 4),  # the last whole one
        (f"{SECTION}?downsample=1&left=512&top=0&width=256&height=256&quality=95", 1, 0, 1),
        (f"{SECTION}?downsample=1&left=0&top=0&width=512&height=512&downsample_dimensions=true&quality=95", 1, 0, 0),
    ],
)
def test_a_whole_tile_at_the_stored_quality_is_the_stored_stream(
    collection: Collection, http: httpx2.Client, url: str, level: int, row: int, col: int
) -> None:
    response = http.get(url)
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    stored = primary_tile(collection, level, row, col)
    assert response.content == stored
    assert int(response.headers["content-length"]) == len(stored)
    expected = collection.rgb[(row * 256) << level :, (col * 256) << level :][: 256 << level, : 256 << level]
    expected = expected.reshape(256, 1 << level, 256, 1 << level, 3).mean(axis=(1, 3))
    assert psnr(decode_jpeg(response.content), expected) > 38  # the source, through the stored tier


@pytest.mark.parametrize(
    "url",
    [
        f"{SECTION}?left=256&top=256&width=256&height=256&quality=94",  # another quality
        f"{SECTION}?left=256&top=256&width=256&height=256",  # the Allen default, 100
        f"{SECTION}?left=256&top=256&width=256&height=256&quality=95&range=0,200,0,200,0,200",
        f"{SECTION}?left=256&top=256&width=256&height=256&quality=95&contrast=1.5,0.1",
        f"{SECTION}?left=256&top=256&width=256&height=256&quality=95&rgb=1,0.5,1",
        f"{SECTION}?left=256&top=256&width=256&height=256&quality=95&colormap=1,0,0,255,gray",
        f"{SECTION}?left=300&top=256&width=256&height=256&quality=95",  # off the tile grid
        f"{SECTION}?left=1280&top=768&width=220&height=256&quality=95",  # an edge tile
        f"{SECTION}?downsample=3&left=0&top=0&width=187&height=137&quality=95",  # a tier not stored (area average)
        "/api/v2/projection_image_download/2101?projection=true&left=256&top=256&width=256&height=256&quality=95",
    ],
)
def test_other_requests_are_rendered(client: TestClient, rendering: TestClient, url: str) -> None:
    """Each answer is the one rendered with stored tiles turned off."""
    response = client.get(url)
    assert response.status_code == 200
    assert response.content == rendering.get(url).content


@pytest.mark.parametrize(
    "tile",
    [
        "256,256,256,256/255,/0/default.jpg",  # resampled
        "256,256,256,256/256,/0/gray.jpg",
        "256,256,256,256/256,/90/default.jpg",
        "256,256,256,256/256,/!0/default.jpg",  # mirrored
        "256,256,256,256/256,/0/default.png",
        "256,256,512,512/256,/0/default.jpg",  # a box of tier 1 off its tile grid
    ],
)
def test_other_iiif_requests_are_rendered(iiif_at_95: TestClient, rendering: TestClient, tile: str) -> None:
    response = iiif_at_95.get(f"/iiif/2/2001/{tile}")
    assert response.status_code == 200
    assert response.content == rendering.get(f"/iiif/2/2001/{tile}").content


def test_a_re_encode_at_another_quality_stays_close_to_the_stored_pixels(
    collection: Collection, client: TestClient
) -> None:
    stored = decode_jpeg(primary_tile(collection, 0, 1, 1))
    other = client.get(f"{SECTION}?left=256&top=256&width=256&height=256&quality=94")
    assert other.content != primary_tile(collection, 0, 1, 1)
    assert psnr(decode_jpeg(other.content), stored) > 38


def test_iiif_tiles_at_the_stored_quality_are_the_stored_streams(
    collection: Collection, iiif_at_95: TestClient, client: TestClient
) -> None:
    tile = "/iiif/2/2001/256,256,256,256/256,/0/default.jpg"
    assert iiif_at_95.get(tile).content == primary_tile(collection, 0, 1, 1)
    assert iiif_at_95.get("/iiif/2/2001/512,0,512,512/256,/0/default.jpg").content == primary_tile(collection, 1, 0, 1)
    assert client.get(tile).content != primary_tile(collection, 0, 1, 1)  # IIIF's default quality is 90


def test_turned_off_every_tile_is_rendered_under_another_etag(
    collection: Collection, client: TestClient, rendering: TestClient
) -> None:
    """Only answers a stored tile may give (a JPEG of one tile's stored pixels, at any quality: the ETag
    is computed without reading the file) change their ETag with the setting; a region or an edge tile
    keeps its own."""
    url = f"{SECTION}?left=256&top=256&width=256&height=256&quality=95"
    rendered, stored = rendering.get(url), client.get(url)
    assert stored.content == primary_tile(collection, 0, 1, 1) != rendered.content
    assert rendered.headers["etag"] != stored.headers["etag"]
    assert rendering.head(url).headers["etag"] == rendered.headers["etag"]
    assert decode_jpeg(stored.content).shape == decode_jpeg(rendered.content).shape == (256, 256, 3)
    assert psnr(decode_jpeg(rendered.content), decode_jpeg(stored.content)) > 38
    other_quality = f"{SECTION}?left=256&top=256&width=256&height=256&quality=94"
    assert client.get(other_quality).headers["etag"] != rendering.get(other_quality).headers["etag"]
    for other in ("left=1280&top=768&width=220&height=256&quality=95", "left=10&top=20&width=300&height=200"):
        assert client.get(f"{SECTION}?{other}").headers["etag"] == rendering.get(f"{SECTION}?{other}").headers["etag"]


def test_stored_tiles_are_not_kept_in_the_output_cache(collection: Collection) -> None:
    """A stored tile is read again for every request (cheaper than the render a cache entry saves): the
    output cache neither counts nor keeps it, and keeps the rendered tile beside it."""
    stored_url = f"{SECTION}?left=256&top=256&width=256&height=256&quality=95"
    rendered_url = f"{SECTION}?left=256&top=256&width=256&height=256&quality=94"
    with TestClient(create_app(collection.settings)) as client:
        answers = [client.get(url) for url in (stored_url, stored_url, rendered_url)]
        stats = client.get("/healthz").json()["output_cache"]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert answers[0].content == answers[1].content == primary_tile(collection, 0, 1, 1)
    assert (stats["hits"], stats["misses"], stats["entries"]) == (0, 1, 1)
    assert stats["bytes"] == len(answers[2].content)
