"""Configured limits: each answers with a clear status and a message naming the limit and its value."""

from __future__ import annotations

from dataclasses import replace

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Collection
from tierserve.api.app import create_app
from tierserve.api.params import parse_options
from tierserve.core.tiers import Box
from tierserve.db.database import Database
from tierserve.db.repository import load_image
from tierserve.downloads import DownloadJob, plan_download
from tierserve.errors import LimitExceeded
from tierserve.settings import Settings


def client_with(collection: Collection, **limits: object) -> TestClient:
    settings = collection.settings.model_copy(update=limits)
    return TestClient(create_app(settings), raise_server_exceptions=False)


def test_output_pixel_limit(collection: Collection) -> None:
    with client_with(collection, max_output_pixels=100_000) as client:
        response = client.get("/api/v2/section_image_download/2001")
        assert response.status_code == 400
        assert response.json()["msg"] == (
            "output of 1500x1100 = 1650000 pixels exceeds max_output_pixels=100000; "
            "ask for a region or a higher downsample"
        )
        assert client.get("/api/v2/section_image_download/2001?downsample=3").status_code == 200


def test_query_length_limit(collection: Collection) -> None:
    with client_with(collection, max_query_length=300) as client:
        response = client.get("/api/v2/data/query.json?q=model::SectionImage" + ",rma::criteria,[id$gt0]" * 20)
        assert response.status_code == 414
        assert response.json() == {
            "success": False,
            "msg": "query string of 481 bytes exceeds max_query_length=300",
        }
        assert client.get("/api/v2/section_image_download/2001?downsample=4").status_code == 200


def test_default_limits_allow_a_whole_180_megapixel_section(collection: Collection) -> None:
    """Planned with the default settings' limit, the whole of a 16000 x 11250 section at full resolution
    is one output of 180 Mpx; twice its width is refused naming the limit."""
    database = Database(collection.settings.resolved_database_url)
    try:
        with database.session() as session:
            stored = load_image(session, 2001)
    finally:
        database.dispose()
    limit = Settings.model_fields["max_output_pixels"].default

    def whole(width: int, height: int) -> DownloadJob:
        record = replace(stored, image_width=width, image_height=height, section=Box(0, 0, width, height), tier_count=8)
        return plan_download(record, parse_options([]), limit)

    output = whole(16000, 11250).spec.plan.output
    assert (output.width, output.height) == (16000, 11250)
    with pytest.raises(LimitExceeded, match="exceeds max_output_pixels"):
        whole(32000, 11250)


def test_cors_and_cache_headers(client: TestClient) -> None:
    image = client.get("/api/v2/section_image_download/2001?downsample=4", headers={"Origin": "https://viewer.example"})
    assert image.headers["access-control-allow-origin"] == "*"
    assert image.headers["cache-control"] == "public, max-age=86400"
    data = client.get("/api/v2/data/SectionImage/2001.json")
    assert data.headers["cache-control"] == "no-cache"
