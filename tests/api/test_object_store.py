"""The collection ingested into an S3 bucket (moto on loopback, behind a fault proxy) and served from it:
every download answers byte for byte what the local store answers, without a HEAD or LIST, in few GETs."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from tests.conftest import Collection
from tests.s3 import FaultProxy, MotoServer, aws_environment, fault_proxy
from tierserve.api.app import create_app
from tierserve.cli import run_ingest
from tierserve.settings import Settings

URLS = [
    "/api/v2/section_image_download/2001",
    "/api/v2/section_image_download/2001?downsample=1&quality=75",
    "/api/v2/section_image_download/2001?left=300&top=200&width=900&height=700",
    "/api/v2/section_image_download/2001?left=100&top=50&width=200&height=100&quality=80",
    "/api/v2/section_image_download/2001?left=256&top=256&width=256&height=256&quality=95",  # a stored tile
    "/api/v2/section_image_download/2001?expression=true&downsample=2",
    "/api/v2/section_image_download/2002?downsample=1",
    "/api/v2/section_image_download/2101?range=0,923,0,987,0,4095&downsample=1",
    "/api/v2/section_image_download/2101?format=tiff&left=0&top=0&width=300&height=200",
    "/api/v2/projection_image_download/2101?projection=true&format=png",
    "/api/v2/atlas_image_download/3001?annotation=true&atlas=2",
    "/api/v2/data/query.json?q=model::SectionImage,rma::criteria,[data_set_id$eq2000]",
]


@dataclass
class Served:
    client: TestClient
    proxy: FaultProxy


@pytest.fixture(scope="module")
def from_bucket(collection: Collection, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The collection's manifest ingested into a new bucket through the CLI's ingest, and an app serving it."""
    with MotoServer() as moto, fault_proxy(moto.url) as proxy, aws_environment(proxy.url):
        bucket = f"tierserve-{uuid.uuid4().hex[:12]}"
        moto.create_bucket(bucket)
        data = tmp_path_factory.mktemp("s3-data")
        settings = Settings(data_dir=data, store_url=f"s3://{bucket}/collection")
        report = run_ingest(settings, collection.manifest)
        assert report.ok, report.failed
        assert not (data / "store").exists()  # every pyramid went to the bucket
        with TestClient(create_app(settings), raise_server_exceptions=False) as client:
            yield Served(client, proxy)


@pytest.mark.parametrize("url", URLS)
def test_a_bucket_serves_what_the_local_store_serves(from_bucket: Served, client: TestClient, url: str) -> None:
    local = client.get(url)
    from_bucket.proxy.reset()
    remote = from_bucket.client.get(url)
    assert (local.status_code, remote.status_code) == (200, 200), remote.text
    assert remote.headers["content-type"] == local.headers["content-type"]
    assert remote.content == local.content
    counts = from_bucket.proxy.counts
    assert counts["HEAD"] == counts["LIST"] == counts["PUT"] == 0


def test_a_region_costs_one_round_of_gets_once_the_header_is_cached(from_bucket: Served) -> None:
    url = "/api/v2/section_image_download/2001?left=512&top=256&width=400&height=300&quality=77"
    assert from_bucket.client.get(url).status_code == 200  # the tile tables of the file are now kept
    from_bucket.proxy.reset()
    assert from_bucket.client.get(url.replace("quality=77", "quality=78")).status_code == 200
    requests = from_bucket.proxy.requests
    assert {request.method for request in requests} == {"GET"}
    assert 1 <= len(requests) <= 2, requests  # 4 tiles in 2 rows: obstore coalesces them


def test_throttling_and_dropped_connections_are_retried(from_bucket: Served) -> None:
    url = "/api/v2/section_image_download/2101?downsample=2&quality=61"
    from_bucket.proxy.slow_down(2)
    from_bucket.proxy.drop(1)
    response = from_bucket.client.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/jpeg"


def s3_reads() -> tuple[float, float]:
    """The s3 backend's store reads so far, and their bytes (metrics of this process)."""
    labels = {"backend": "s3"}
    count = REGISTRY.get_sample_value("tierserve_store_read_duration_seconds_count", labels)
    return count or 0.0, REGISTRY.get_sample_value("tierserve_store_read_bytes_total", labels) or 0.0


def test_a_region_is_one_store_read_in_the_metrics(from_bucket: Served) -> None:
    url = "/api/v2/section_image_download/2001?left=512&top=256&width=400&height=300&quality=71"
    assert from_bucket.client.get(url).status_code == 200  # the tile tables of the file are now kept
    reads, read_bytes = s3_reads()
    from_bucket.proxy.reset()
    assert from_bucket.client.get(url.replace("quality=71", "quality=72")).status_code == 200
    spans = [request.range.removeprefix("bytes=").split("-") for request in from_bucket.proxy.requests if request.range]
    fetched = sum(int(last) - int(first) + 1 for first, last in spans)
    assert s3_reads()[0] == reads + 1  # one round of GETs
    assert 0 < s3_reads()[1] - read_bytes <= fetched  # the tiles' bytes, of the coalesced ranges


def test_a_bucket_that_does_not_answer_is_not_ready(from_bucket: Served) -> None:
    from_bucket.proxy.drop(1000)
    try:
        response = from_bucket.client.get("/readyz")
    finally:
        from_bucket.proxy.reset()
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["database"] == "ok"
    assert body["store"].startswith("object store s3://") and " did not answer: " in body["store"], body
    assert body["msg"] == f"not ready: store: {body['store']}"


def test_the_store_url_defaults_to_the_data_directory(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path, store_url="s3://bucket/prefix").resolved_store_url == "s3://bucket/prefix"
    assert Settings(data_dir=tmp_path).resolved_store_url == (tmp_path / "store").as_uri()
