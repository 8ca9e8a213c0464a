"""Small answers are kept by ETag, bounded in bytes, least recently used out; the health check reports it."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import Collection
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
