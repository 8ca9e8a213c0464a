"""HEAD is answered wherever GET is: the headers GET sends, no body, and for images no render; tiny
reads render on the event loop."""

from __future__ import annotations

import httpx2
import pytest
from fastapi.testclient import TestClient

from tests.images import decode_jpeg
from tierserve.api.state import AppState

IMAGE_URLS = [
    "/api/v2/section_image_download/2001?left=0&top=0&width=256&height=256",  # rendered on the event loop
    "/api/v2/section_image_download/2001",  # rendered on a render thread
    "/api/v2/projection_image_download/2101?projection=true&format=png",
    "/api/v2/atlas_image_download/3001?annotation=true&atlas=2",
]
#: Headers of a GET that HEAD repeats; Content-Length only where it is known without rendering.
SAME = ("content-type", "content-disposition", "etag", "cache-control")


def _state(client: TestClient) -> AppState:
    state: AppState = client.app.state.tierserve  # type: ignore[attr-defined]
    return state


@pytest.mark.parametrize("url", IMAGE_URLS)
def test_head_of_an_image_sends_the_headers_of_get_without_rendering(http: httpx2.Client, url: str) -> None:
    head = http.head(url)
    get = http.get(url)
    assert (head.status_code, get.status_code) == (200, 200)
    assert head.content == b""
    assert {name: head.headers[name] for name in SAME} == {name: get.headers[name] for name in SAME}
    assert "content-length" not in head.headers or head.headers["content-length"] == get.headers["content-length"]


def test_head_of_a_large_image_admits_no_render(client: TestClient) -> None:
    gate = _state(client).renderer.gate
    before = gate.admitted
    response = client.head("/api/v2/section_image_download/2001")
    assert response.status_code == 200
    assert gate.admitted == before
    client.get("/api/v2/section_image_download/2001")
    assert gate.admitted == before + 1  # the same URL by GET renders on a render thread


def test_head_revalidates_like_get(http: httpx2.Client) -> None:
    url = IMAGE_URLS[0]
    etag = http.head(url).headers["etag"]
    response = http.head(url, headers={"If-None-Match": etag})
    assert response.status_code == 304
    assert response.headers["etag"] == etag and response.content == b""


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("/api/v2/section_image_download/2001?quality=101", 400),
        ("/api/v2/section_image_download/424242", 404),
        ("/api/v2/section_image_download/2001?expression=true&projection=true", 400),
    ],
)
def test_head_of_a_bad_request_has_the_status_of_get(http: httpx2.Client, url: str, status: int) -> None:
    head = http.head(url)
    assert head.status_code == http.get(url).status_code == status
    assert head.headers["content-type"] == "application/json" and head.content == b""


@pytest.mark.parametrize(
    "url", ["/api/v2/data/query.json?q=model::SectionImage,rma::criteria,[data_set_id$eq2000]", "/healthz"]
)
def test_head_of_other_routes_has_the_length_of_get(http: httpx2.Client, url: str) -> None:
    head = http.head(url)
    get = http.get(url)
    assert head.status_code == get.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]
    assert int(head.headers["content-length"]) == len(get.content) > 0


def test_other_methods_are_refused_naming_the_allowed_ones(http: httpx2.Client) -> None:
    response = http.request("DELETE", "/api/v2/section_image_download/2001")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"
    assert response.json() == {"success": False, "msg": "Method Not Allowed"}


def test_a_tiny_read_from_a_local_store_renders_on_the_event_loop(client: TestClient) -> None:
    gate = _state(client).renderer.gate
    before = gate.admitted
    response = client.get("/api/v2/section_image_download/2001?left=256&top=256&width=256&height=256&quality=90")
    assert response.status_code == 200
    assert int(response.headers["content-length"]) == len(response.content)
    assert decode_jpeg(response.content).shape == (256, 256, 3)
    assert gate.admitted == before  # no render thread was asked for
