"""ETags and If-None-Match on the image endpoints: revalidation without rendering."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx2
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.conftest import Collection
from tests.images import decode_jpeg
from tierserve.api.app import create_app
from tierserve.api.conditional import none_match
from tierserve.db.database import Database
from tierserve.db.models import ImageLayer
from tierserve.settings import Settings

REGION = "/api/v2/section_image_download/2001?left=100&top=50&width=200&height=100&quality=80"


def etag_of(http: httpx2.Client, url: str) -> str:
    response = http.get(url)
    assert response.status_code == 200, response.text
    return response.headers["etag"]


def test_images_carry_a_strong_quoted_etag_and_cache_control(http: httpx2.Client) -> None:
    response = http.get(REGION)
    tag = response.headers["etag"]
    assert tag.startswith('"') and tag.endswith('"') and len(tag) == 34
    assert response.headers["cache-control"] == "public, max-age=86400"
    assert etag_of(http, REGION) == tag


@pytest.mark.parametrize(
    "same",
    [
        "/api/v2/section_image_download/2001?quality=80&height=100&width=200&top=50&left=100",
        "/api/v2/section_image_download/2001&left=100&top=50&width=200&height=100&quality=80",
        REGION + "&downsample=0&format=jpg",
        "/api/v2/image_download/2001?left=100&top=50&width=200&height=100&quality=80",
    ],
)
def test_equivalent_requests_share_the_etag(http: httpx2.Client, same: str) -> None:
    assert etag_of(http, same) == etag_of(http, REGION)


@pytest.mark.parametrize(
    "other",
    [
        REGION.replace("left=100", "left=101"),
        REGION.replace("quality=80", "quality=81"),
        REGION + "&downsample=1",
        REGION + "&format=png",
        REGION + "&view=expression",
        REGION + "&colormap=0.5,0,0,255,1",
        "/api/v2/section_image_download/2002?left=100&top=50&width=200&height=100&quality=80",
    ],
)
def test_different_outputs_have_different_etags(http: httpx2.Client, other: str) -> None:
    assert etag_of(http, other) != etag_of(http, REGION)


@pytest.mark.parametrize("header", ["{tag}", "W/{tag}", '"other", {tag}', "*"])
def test_a_matching_if_none_match_is_304_without_a_body(http: httpx2.Client, header: str) -> None:
    tag = etag_of(http, REGION)
    response = http.get(REGION, headers={"If-None-Match": header.format(tag=tag)})
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == tag
    assert response.headers["cache-control"] == "public, max-age=86400"


def test_a_stale_if_none_match_gets_the_image(http: httpx2.Client) -> None:
    response = http.get(REGION, headers={"If-None-Match": '"0123456789abcdef0123456789abcdef"'})
    assert response.status_code == 200
    assert decode_jpeg(response.content).shape == (100, 200, 3)


def test_errors_carry_no_etag(http: httpx2.Client) -> None:
    for url in ("/api/v2/section_image_download/2001?left=-1", "/api/v2/section_image_download/999"):
        response = http.get(url, headers={"If-None-Match": "*"})
        assert response.status_code in (400, 404)
        assert "etag" not in response.headers


def test_the_etag_follows_the_version_recorded_at_ingest(collection: Collection, tmp_path: Path) -> None:
    """The ETag names the stored file's version as ingest recorded it, so no request asks the store; a
    file replaced behind tierserve's back is an operator error (`tierserve gc` reports it)."""
    if collection.settings.database_url:
        pytest.skip("changes the database: runs on the collection's own SQLite copy only")
    data = tmp_path / "data"
    shutil.copytree(collection.settings.data_dir, data)
    settings = Settings(data_dir=data, record_cache_seconds=0)
    with TestClient(create_app(settings)) as client:
        before = etag_of(client, REGION)
        database = Database(settings.resolved_database_url)
        with database.session() as session, session.begin():
            layer = session.scalars(
                select(ImageLayer).where(ImageLayer.sub_image_id == 2001, ImageLayer.kind == "primary")
            ).one()
            stored, replacement = data / "store" / layer.path, data / "store" / "replacement.tif"
            other = session.scalars(
                select(ImageLayer.path).where(ImageLayer.sub_image_id == 2002, ImageLayer.kind == "primary")
            ).one()
            shutil.copy(data / "store" / other, replacement)
            replacement.replace(stored)  # behind tierserve's back: the recorded version still names the old file
            assert client.get(REGION, headers={"If-None-Match": before}).status_code == 304
            layer.version = "republished"  # what publishing a new version records
            layer.byte_size = stored.stat().st_size
        database.dispose()
        after = etag_of(client, REGION)
        assert after != before
        assert client.get(REGION, headers={"If-None-Match": before}).status_code == 200
        assert client.get(REGION, headers={"If-None-Match": after}).status_code == 304


@pytest.mark.parametrize(
    ("header", "matches"),
    [(None, False), ("", False), ('"a"', True), ('W/"a"', True), ('"b" , "a"', True), ('"b"', False), ("a", False)],
)
def test_none_match(header: str | None, matches: bool) -> None:
    assert none_match(header, '"a"') is matches
