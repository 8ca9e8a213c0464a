"""Render output goes from a worker thread to the client buffered when small, streamed when large."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Mapping

import httpx2
import pytest
from starlette.responses import Response, StreamingResponse

from tests.images import decode_jpeg
from tierserve.api import streaming
from tierserve.api.streaming import Renderer
from tierserve.core.encode import Sink
from tierserve.errors import StorageError, Unavailable


async def respond(render: Callable[[Sink], None], headers: Mapping[str, str] | None = None) -> Response:
    """A response from a fresh renderer: 2 threads, 4 queued, 5 s queue timeout, 30 s deadline."""
    return await Renderer(2, 4, 5.0, 30.0).respond(render, "image/jpeg", headers or {})


def produce(total: int, chunk: int = 8192) -> bytes:
    return bytes(i % 251 for i in range(total))


async def body_of(response: StreamingResponse) -> bytes:
    return b"".join([part async for part in response.body_iterator])  # type: ignore[misc]


def test_small_output_is_sent_with_a_content_length() -> None:
    data = produce(100_000)

    def render(sink: Sink) -> None:
        for i in range(0, len(data), 8192):
            sink(data[i : i + 8192])

    response = asyncio.run(respond(render, {"X-Test": "1"}))
    assert not isinstance(response, StreamingResponse)
    assert response.body == data
    assert response.headers["content-length"] == str(len(data))
    assert response.headers["x-test"] == "1"


def test_large_output_streams_in_order() -> None:
    data = produce(5 * 1024 * 1024)

    def render(sink: Sink) -> None:
        for i in range(0, len(data), 8192):
            assert sink(data[i : i + 8192])

    async def run() -> bytes:
        response = await respond(render)
        assert isinstance(response, StreamingResponse)
        return await body_of(response)

    assert asyncio.run(run()) == data


def test_an_error_before_the_first_bytes_is_raised_for_the_error_table() -> None:
    def render(sink: Sink) -> None:
        sink(b"x" * 1000)
        raise StorageError("image 7: stored pyramid could not be decoded")

    with pytest.raises(StorageError, match="image 7"):
        asyncio.run(respond(render))


def test_render_stops_when_the_client_goes_away() -> None:
    stopped = threading.Event()

    def render(sink: Sink) -> None:
        while sink(b"y" * 65536):
            pass
        stopped.set()

    async def run() -> None:
        response = await respond(render)
        assert isinstance(response, StreamingResponse)
        iterator = response.body_iterator
        await iterator.__anext__()  # type: ignore[union-attr]
        await iterator.aclose()  # type: ignore[union-attr]

    asyncio.run(run())
    assert stopped.wait(5), "the render thread kept producing after the client left"


def test_a_real_server_streams_large_images_chunked(live_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(streaming, "HEAD_BYTES", 16 * 1024)
    with httpx2.Client(base_url=live_server, timeout=30) as http:
        response = http.get("/api/v2/section_image_download/2001")
        assert response.status_code == 200
        assert response.headers.get("transfer-encoding") == "chunked"
        assert "content-length" not in response.headers
        assert decode_jpeg(response.content).shape == (1100, 1500, 3)


def test_a_client_leaving_mid_stream_does_not_disturb_the_server(
    live_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(streaming, "HEAD_BYTES", 16 * 1024)
    with httpx2.Client(base_url=live_server, timeout=30) as http:
        for _ in range(5):
            with http.stream("GET", "/api/v2/section_image_download/2001") as response:
                next(response.iter_bytes())
        started = time.monotonic()
        assert http.get("/api/v2/section_image_download/2001?downsample=3").status_code == 200
        assert time.monotonic() - started < 5


def test_busy_worker_answers_503_when_the_queue_is_full() -> None:
    release = threading.Event()

    def slow(sink: Sink) -> None:
        release.wait(5)
        sink(b"done")

    async def run() -> None:
        renderer = Renderer(1, 0, 5.0, 30.0)
        first = asyncio.create_task(renderer.respond(slow, "image/jpeg", {}))
        await asyncio.sleep(0.05)
        with pytest.raises(Unavailable) as raised:
            await renderer.respond(slow, "image/jpeg", {})
        assert "all 1 render threads are busy and max_queued_renders=0" in raised.value.message
        assert raised.value.retry_after == 1
        release.set()
        assert (await first).body == b"done"
        assert (await renderer.respond(lambda sink: sink(b"again") and None, "image/jpeg", {})).body == b"again"

    asyncio.run(run())


def test_waiting_longer_than_queue_timeout_is_503() -> None:
    release = threading.Event()

    async def run() -> None:
        renderer = Renderer(1, 5, 0.2, 30.0)
        first = asyncio.create_task(renderer.respond(lambda sink: release.wait(5) and None, "image/jpeg", {}))
        await asyncio.sleep(0.05)
        with pytest.raises(Unavailable, match=r"queue_timeout=0.2 s"):
            await renderer.respond(lambda sink: None, "image/jpeg", {})
        release.set()
        await first

    asyncio.run(run())


def test_a_render_past_its_deadline_is_503() -> None:
    def slow(sink: Sink) -> None:
        while sink(b"z" * 1000):
            time.sleep(0.05)

    with pytest.raises(Unavailable, match="render_deadline"):
        asyncio.run(Renderer(1, 1, 5.0, 0.3).respond(slow, "image/jpeg", {}))

    def silent(sink: Sink) -> None:
        time.sleep(1.0)

    with pytest.raises(Unavailable, match="render_deadline"):
        asyncio.run(Renderer(1, 1, 5.0, 0.3).respond(silent, "image/jpeg", {}))


def test_a_quiet_renderer_gives_its_free_heap_back_once() -> None:
    trims: list[str] = []

    async def run() -> None:
        renderer = Renderer(2, 4, 5.0, 30.0, 0.1, lambda: trims.append(threading.current_thread().name))
        for _ in range(3):
            await renderer.respond(lambda sink: sink(b"x") and None, "image/jpeg", {})
        await asyncio.sleep(0.3)
        renderer.close()

    asyncio.run(run())
    assert len(trims) == 1
    assert trims[0].startswith("render")  # on a render thread, never on the event loop


def test_no_trim_while_renders_keep_arriving() -> None:
    trims: list[float] = []

    async def run() -> float:
        renderer = Renderer(2, 4, 5.0, 30.0, 0.2, lambda: trims.append(time.monotonic()))
        for _ in range(8):  # one render every 0.05 s: never 0.2 s quiet
            await renderer.respond(lambda sink: sink(b"x") and None, "image/jpeg", {})
            await asyncio.sleep(0.05)
        last = time.monotonic()
        await asyncio.sleep(0.4)
        renderer.close()
        return last

    last = asyncio.run(run())
    assert len(trims) == 1
    assert trims[0] >= last
