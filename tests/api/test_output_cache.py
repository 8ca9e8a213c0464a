"""Small answers are kept by ETag, bounded in bytes, least recently used out; the health check reports it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Collection
from tierserve.api import asgi
from tierserve.api.app import create_app
from tierserve.api.output_cache import OutputCache

TILE = "/api/v2/section_image_download/2001?left=256&top=0&width=256&height=256&quality={quality}"


def looked_up(cache: OutputCache, etag: str) -> bytes | None:
    """A request's lookup of `etag`, as `send_image` makes it: a peek, counted once."""
    answer = cache.peek(etag)
    cache.count(etag, hit=answer is not None)
    return answer


def test_the_least_recently_used_answers_leave_first() -> None:
    cache = OutputCache(capacity=1600)
    for tag in "abcd":
        cache.put(tag, tag.encode() * 100)
    assert looked_up(cache, "a") == b"a" * 100  # a is now the most recently used
    cache.put("e", b"e" * 100)
    cache.put("f", b"f" * 1000)  # over a sixteenth of the capacity: not kept
    assert [tag for tag in "abcdef" if looked_up(cache, tag) is not None] == ["a", "b", "c", "d", "e"]
    for tag in "ghijklmnopqrst":
        cache.put(tag, b"x" * 100)
    assert cache.stats.bytes == 1600 and cache.stats.entries == 16
    assert looked_up(cache, "b") is None and looked_up(cache, "t") is not None
    lookups = (cache.stats.hits, cache.stats.misses)
    assert cache.peek("s") == b"x" * 100 and cache.peek("b") is None  # neither counted nor made recent
    assert (cache.stats.hits, cache.stats.misses) == lookups
    assert cache.peek("d") is not None  # the least recently used, and still so after the peek:
    cache.put("u", b"x" * 100)
    assert cache.peek("d") is None and cache.peek("e") is not None


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


def test_renders_up_to_inline_render_pixels_run_on_the_event_loop(
    collection: Collection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 600 x 600 region (360,000 pixels) renders on the event loop at a limit of 1024 x 1024, on a
    render thread at 512 x 512, the same bytes; neither is kept in the output cache (reads above
    `CACHED_READ_PIXELS`), a tile rendered on the loop is."""
    threads = renders(monkeypatch)
    region = "/api/v2/section_image_download/2001?left=100&top=200&width=600&height=600&quality=77"
    answers = {}
    for limit in (1024 * 1024, 512 * 512):
        settings = collection.settings.model_copy(update={"inline_render_pixels": limit})
        with TestClient(create_app(settings)) as client:
            answers[limit] = client.get(region)
            assert client.get("/healthz").json()["output_cache"]["entries"] == 0
            assert client.get(TILE.format(quality=77)).status_code == 200
            assert client.get("/healthz").json()["output_cache"]["entries"] == 1
    assert [name.startswith("render") for name in threads] == [False, False, True, False]
    assert answers[512 * 512].status_code == answers[1024 * 1024].status_code == 200
    assert answers[512 * 512].content == answers[1024 * 1024].content


def renders(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the threads that run each render from now on (on the loop `render_download`, on a
    render thread `run_download`)."""
    threads: list[str] = []
    for name in ("render_download", "run_download"):
        monkeypatch.setattr(asgi, name, _recording(getattr(asgi, name), threads))
    return threads


def _recording(render: Callable[..., None], threads: list[str]) -> Callable[..., None]:
    def recorded(*args: Any) -> None:
        threads.append(threading.current_thread().name)
        render(*args)

    return recorded


async def tile(app: Any, quality: int) -> None:
    """A GET of a 256 x 256 tile of image 2001 at `quality`, straight through the ASGI interface."""
    query = f"left=256&top=0&width=256&height=256&quality={quality}"
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/api/v2/section_image_download/2001",
        "raw_path": b"",
        "query_string": query.encode(),
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


def test_a_render_on_the_event_loop_lets_queued_work_run_first(
    collection: Collection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the loop has queued when a render on it is about to start (here a callback; in a server
    other requests' steps, and with uvloop the sockets ready) runs before the render, not after it."""
    threads = renders(monkeypatch)
    order: list[str] = []
    app = create_app(collection.settings)

    async def main() -> None:
        async with app.router.lifespan_context(app):
            await tile(app, 61)  # the image's record is remembered from now on: no await before the render
            asyncio.get_running_loop().call_soon(order.append, "ready")
            rendered = len(threads)
            await tile(app, 62)
            order.append("rendered" if len(threads) > rendered else "not rendered")

    asyncio.run(main())
    assert order == ["ready", "rendered"]


def test_identical_requests_at_once_render_once(collection: Collection, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two requests for the same tile at once: the second finds the first one's answer after the
    loop's turn, does not render it again, and counts as a hit (one lookup per request)."""
    threads = renders(monkeypatch)
    app = create_app(collection.settings)

    async def main() -> None:
        async with app.router.lifespan_context(app):
            await tile(app, 63)  # remembers the record
            await asyncio.gather(tile(app, 64), tile(app, 64))

    asyncio.run(main())
    assert len(threads) == 2
    stats = app.state.tierserve.outputs.stats
    assert (stats.hits, stats.misses) == (1, 2)
