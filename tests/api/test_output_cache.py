"""Small answers are kept by ETag, bounded in bytes, least recently used out; the health check reports it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Collection
from tierserve.api import asgi
from tierserve.api.app import create_app
from tierserve.api.output_cache import OutputCache

TILE = "/api/v2/section_image_download/2001?left=256&top=0&width=256&height=256&quality={quality}"


def test_the_least_recently_used_answers_leave_first() -> None:
    cache = OutputCache(capacity=1600)
    for tag in "abcd":
        cache.put(tag, tag.encode() * 100)
    assert cache.get("a") == b"a" * 100  # a is now the most recently used
    cache.put("e", b"e" * 100)
    cache.put("f", b"f" * 1000)  # over a sixteenth of the capacity: not kept
    assert [tag for tag in "abcdef" if cache.get(tag) is not None] == ["a", "b", "c", "d", "e"]
    for tag in "ghijklmnopqrst":
        cache.put(tag, b"x" * 100)
    assert cache.stats.bytes == 1600 and cache.stats.entries == 16
    assert cache.get("b") is None and cache.get("t") is not None


def test_a_repeated_tile_is_answered_from_the_cache(collection: Collection) -> None:
    with TestClient(create_app(collection.settings)) as client:
        first = client.get(TILE.format(quality=81))
        again = client.get(TILE.format(quality=81))
        other = client.get(TILE.format(quality=82))
        stats = client.get("/healthz").json()["output_cache"]
    assert first.status_code == again.status_code == other.status_code == 200
    assert again.content == first.content and again.headers["etag"] == first.headers["etag"]
    assert other.headers["etag"] != first.headers["etag"]
    assert (stats["hits"], stats["misses"], stats["entries"]) == (1, 2, 2)
    assert stats["bytes"] == len(first.content) + len(other.content) and stats["hit_rate"] == round(1 / 3, 4)


def test_a_cache_of_zero_bytes_keeps_nothing(collection: Collection) -> None:
    settings = collection.settings.model_copy(update={"output_cache_bytes": 0})
    with TestClient(create_app(settings)) as client:
        for _ in range(2):
            assert client.get(TILE.format(quality=83)).status_code == 200
        stats = client.get("/healthz").json()["output_cache"]
    assert (stats["hits"], stats["misses"], stats["entries"]) == (0, 2, 0)


def test_renders_up_to_inline_render_pixels_run_on_the_event_loop(collection: Collection) -> None:
    """A 600 x 600 region (360,000 pixels) renders on the event loop, kept in the cache, at a limit of
    1024 x 1024; at 512 x 512 on a render thread, which answers the same bytes and keeps nothing."""
    region = "/api/v2/section_image_download/2001?left=100&top=200&width=600&height=600&quality=77"
    answers = {}
    for limit, kept in ((1024 * 1024, 1), (512 * 512, 0)):
        settings = collection.settings.model_copy(update={"inline_render_pixels": limit})
        with TestClient(create_app(settings)) as client:
            answers[limit] = client.get(region)
            assert client.get("/healthz").json()["output_cache"]["entries"] == kept
    assert answers[512 * 512].status_code == answers[1024 * 1024].status_code == 200
    assert answers[512 * 512].content == answers[1024 * 1024].content


def test_a_render_on_the_event_loop_lets_ready_work_run_first(
    collection: Collection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the loop has ready when a render on it is about to start (here a callback; in a server
    accepts, reads and other responses) runs before the render, not after it."""
    order: list[str] = []
    render = asgi.run_download

    def recorded(*args: Any) -> None:
        order.append("render")
        render(*args)

    monkeypatch.setattr(asgi, "run_download", recorded)
    app = create_app(collection.settings)

    async def request(quality: int) -> None:
        scope = {
            "type": "http",
            "method": "GET",
            "path": "/api/v2/section_image_download/2001",
            "raw_path": b"",
            "query_string": f"left=256&top=0&width=256&height=256&quality={quality}".encode(),
            "headers": [],
            "root_path": "",
            "scheme": "http",
            "server": ("test", 80),
            "client": ("test", 1),
        }

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            return None

        await app(scope, receive, send)

    async def main() -> None:
        async with app.router.lifespan_context(app):
            await request(61)  # the image's record is remembered from now on: no await before the render
            order.clear()
            asyncio.get_running_loop().call_soon(order.append, "ready")
            await request(62)

    asyncio.run(main())
    assert order == ["ready", "render"]
