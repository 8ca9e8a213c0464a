"""Prometheus metrics at /metrics: counted by real requests, in one process and across the two workers of
a real `tierserve serve --workers 2`, read back with the Prometheus client's own parser."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2
import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Collection, running_server, serve_process
from tierserve.api.accounting import route_family
from tierserve.api.app import create_app

#: A 256 x 256 full-resolution region: read and answered on the event loop, kept in the output cache.
TILE = "/api/v2/section_image_download/2001?left=512&top=256&width=256&height=256&quality=77"
MISSING = "/api/v2/section_image_download/999999"
QUERY = "/api/v2/data/query.json?q=model::SectionImage,rma::criteria,[id$eq2001]"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(base: str) -> Samples:
    """Every sample of `base`/metrics, parsed by the Prometheus client: (name, labels) -> value."""
    response = httpx2.get(f"{base}/metrics", timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """A sample's value; 0 when it is absent (nothing counted yet)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def requests(samples: Samples, route: str, status: int) -> float:
    return value(samples, "tierserve_requests_total", route=route, status=str(status))


def test_two_workers_count_into_one_exposition(collection: Collection, tmp_path: Path) -> None:
    """The repeated tile is rendered once by each worker (two cache misses): only a scrape that adds up
    both workers' counts shows both, and every scrape, whichever worker answers it, shows them all."""
    with serve_process(collection, tmp_path, "--workers", "2") as served:
        tiles: list[httpx2.Response] = []
        with ThreadPoolExecutor(8) as pool:
            for _ in range(30):  # new connections in parallel until both workers took some
                tiles += pool.map(lambda _: httpx2.get(served.base + TILE, timeout=30), range(16))
                if value(scrape(served.base), "tierserve_output_cache_lookups_total", result="miss") == 2:
                    break
        missing = httpx2.get(served.base + MISSING, timeout=30)
        query = httpx2.get(served.base + QUERY, timeout=30)
        folders = list((tmp_path / "tmp").glob("tierserve-metrics-*"))
        assert len(folders) == 1 and list(folders[0].glob("counter_*.db")), folders  # one private folder
        scrapes = [scrape(served.base) for _ in range(4)]
    assert not list((tmp_path / "tmp").iterdir())  # removed when the server stopped
    assert {response.status_code for response in tiles} == {200}
    assert (missing.status_code, query.status_code) == (404, 200)
    tile_bytes = sum(len(response.content) for response in tiles)
    for samples in scrapes:
        assert value(samples, "tierserve_output_cache_lookups_total", result="miss") == 2
        assert value(samples, "tierserve_output_cache_lookups_total", result="hit") == len(tiles) - 2
        assert requests(samples, "section_image_download", 200) == len(tiles)
        assert requests(samples, "section_image_download", 404) == 1
        assert requests(samples, "data_query", 200) == 1
        assert requests(samples, "healthz", 200) >= 1
        duration = "tierserve_request_duration_seconds"
        assert value(samples, f"{duration}_count", route="section_image_download") == len(tiles) + 1
        assert value(samples, f"{duration}_bucket", route="section_image_download", le="+Inf") == len(tiles) + 1
        assert 0 < value(samples, f"{duration}_sum", route="section_image_download") < 60
        sent = "tierserve_response_body_bytes_total"
        assert value(samples, sent, route="section_image_download") == tile_bytes + len(missing.content)
        assert value(samples, sent, route="data_query") == len(query.content)
        assert value(samples, "tierserve_store_read_duration_seconds_count", backend="file") >= 2
        assert value(samples, "tierserve_store_read_bytes_total", backend="file") > 0
        assert (
            value(samples, "tierserve_renders", state="running")
            == value(samples, "tierserve_renders", state="waiting")
            == 0
        )
        assert not [
            labels for name, labels in samples if name == "tierserve_requests_total" and ("route", "other") in labels
        ]


def test_one_process_counts_requests_refusals_renders_and_store_reads(collection: Collection) -> None:
    limits = {"render_threads": 1, "max_queued_renders": 0, "max_output_pixels": 1_000_000, "max_query_length": 300}
    settings = collection.settings.model_copy(update=limits)
    whole = "/api/v2/section_image_download/2001?downsample=1"  # 750 x 550: rendered on the render thread
    with running_server(settings) as base, httpx2.Client(base_url=base, timeout=30) as http:
        before = scrape(base)
        tile = http.get(TILE)
        missing = http.get(MISSING)
        too_long = http.get("/api/v2/data/query.json?q=" + "x" * 400)
        too_large = http.get("/api/v2/section_image_download/2001")
        renders: list[httpx2.Response] = []
        with ThreadPoolExecutor(6) as pool:
            for _ in range(20):  # one render thread, no queue: parallel renders are refused
                renders += pool.map(lambda _: httpx2.get(base + whole, timeout=30), range(6))
                if any(response.status_code == 503 for response in renders):
                    break
        after = scrape(base)
    statuses = [response.status_code for response in renders]
    assert (tile.status_code, missing.status_code, too_long.status_code, too_large.status_code) == (200, 404, 414, 400)
    assert set(statuses) == {200, 503}, statuses

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("tierserve_requests_total", route="section_image_download", status="200") == 1 + statuses.count(200)
    assert delta("tierserve_requests_total", route="section_image_download", status="503") == statuses.count(503)
    assert delta("tierserve_requests_total", route="section_image_download", status="404") == 1
    assert delta("tierserve_requests_total", route="section_image_download", status="400") == 1
    assert delta("tierserve_requests_total", route="data_query", status="414") == 1
    assert delta("tierserve_refusals_total", limit="max_queued_renders") == statuses.count(503)
    assert delta("tierserve_refusals_total", limit="max_output_pixels") == 1
    assert delta("tierserve_refusals_total", limit="max_query_length") == 1
    sent = [tile, missing, too_large, *renders]
    assert delta("tierserve_response_body_bytes_total", route="section_image_download") == sum(
        len(r.content) for r in sent
    )
    assert delta("tierserve_store_read_duration_seconds_count", backend="file") >= 1
    assert value(after, "tierserve_renders", state="running") == value(after, "tierserve_renders", state="waiting") == 0
    assert value(after, "process_cpu_seconds_total") > 0  # one process: the default registry's process metrics


def test_the_render_gauge_counts_renders_waiting_and_running(collection: Collection) -> None:
    """While a slow render holds the only render thread and another waits for it, the gauge shows both."""
    settings = collection.settings.model_copy(update={"render_threads": 1, "max_queued_renders": 4})
    whole = "/api/v2/section_image_download/2001"  # 1500 x 1100 at full resolution
    with running_server(settings) as base, ThreadPoolExecutor(3) as pool:
        seen: set[tuple[float, float]] = set()
        for _ in range(20):
            pending = [pool.submit(httpx2.get, base + whole, timeout=30) for _ in range(3)]
            while not all(future.done() for future in pending):
                running = REGISTRY.get_sample_value("tierserve_renders", {"state": "running"})
                waiting = REGISTRY.get_sample_value("tierserve_renders", {"state": "waiting"})
                seen.add((running or 0.0, waiting or 0.0))
                time.sleep(0.001)
            assert {future.result().status_code for future in pending} == {200}
            if any(waiting > 0 for _, waiting in seen):
                break
    assert {running for running, _ in seen} <= {0.0, 1.0}
    assert any(running == 1 and waiting >= 1 for running, waiting in seen), seen
    assert REGISTRY.get_sample_value("tierserve_renders", {"state": "running"}) == 0


def test_metrics_off_answer_404_and_count_nothing(collection: Collection) -> None:
    settings = collection.settings.model_copy(update={"metrics": False})
    counted = {"route": "healthz", "status": "200"}
    with TestClient(create_app(settings)) as client:
        before = REGISTRY.get_sample_value("tierserve_requests_total", counted)
        response = client.get("/metrics")
        assert client.get("/healthz").status_code == 200
        assert REGISTRY.get_sample_value("tierserve_requests_total", counted) == before
    assert response.status_code == 404
    assert response.json() == {"success": False, "msg": "Not Found"}
    assert len(response.headers["x-request-id"]) == 32  # the request id does not depend on the metrics


@pytest.mark.parametrize(
    ("path", "family"),
    [
        ("/api/v2/section_image_download/69750516", "section_image_download"),
        ("/api/v2/atlas_image_download/1", "atlas_image_download"),
        ("/api/v2/projection_image_download/1", "projection_image_download"),
        ("/api/v2/image_download/1", "image_download"),
        ("/api/v2/data/query.json", "data_query"),
        ("/api/v2/data/SectionImage/2001.xml", "data_query"),
        ("/api/v2/nonsense/1", "other"),
        ("/iiif/3/2001/full/max/0/default.jpg", "iiif_image"),
        ("/iiif/2/2001~expression/0,0,256,256/256,/0/default.png", "iiif_image"),
        ("/iiif/3/2001/info.json", "iiif_info"),
        ("/iiif/presentation/3/manifest/1001", "iiif_presentation"),
        ("/viewer/", "viewer"),
        ("/viewer", "viewer"),
        ("/viewerx", "other"),
        ("/healthz", "healthz"),
        ("/readyz", "readyz"),
        ("/metrics", "metrics"),
        ("/openapi.json", "openapi"),
        ("/docs", "openapi"),
        ("/", "other"),
        ("/wp-login.php", "other"),
    ],
)
def test_route_families_are_a_fixed_set_never_the_path(path: str, family: str) -> None:
    assert route_family(path) == family
