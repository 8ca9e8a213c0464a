"""The shared client of Allen-compatible servers against real HTTP servers on loopback: a scripted one
(answers chosen per request: 503 with Retry-After, 404, a body cut short, slow answers) and the live
tierserve of the test collection (data-API paging)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import free_port
from tierserve.remote.source import SourceClient, SourceError, retry_after

#: What the scripted server answers to one request: the raw bytes, then whether to close the connection.
Answer = Callable[[str], bytes]


def ok(body: bytes = b"0123456789" * 100, content_type: str = "image/jpeg") -> bytes:
    head = f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"Connection: close\r\n\r\n" + body


def status(code: int, text: str, headers: str = "", body: bytes = b'{"success": false, "msg": "nope"}') -> bytes:
    head = f"HTTP/1.1 {code} {text}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n{headers}"
    return head.encode() + b"Connection: close\r\n\r\n" + body


def cut_short() -> bytes:
    """Headers promising 1000 bytes, then 400 of them and the connection closed."""
    return b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n" + (
        b"x" * 400
    )


@dataclass
class Scripted:
    """An HTTP server on loopback answering the n-th request with `answers[n]` (the last one repeats);
    `delay` seconds before each answer; records request targets, arrival times and peak concurrency."""

    answers: list[bytes]
    delay: float = 0.0
    targets: list[str] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    in_flight: int = 0
    peak: int = 0
    url: str = ""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self.answer(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        self.targets.append(head.split(b" ", 2)[1].decode())
        self.times.append(time.monotonic())
        answer = self.answers[min(len(self.targets) - 1, len(self.answers) - 1)]
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
            writer.write(answer)
            await writer.drain()
        finally:
            self.in_flight -= 1


@contextlib.contextmanager
def scripted(*answers: bytes, delay: float = 0.0) -> Iterator[Scripted]:
    server = Scripted(list(answers), delay)
    port = free_port()
    server.url = f"http://127.0.0.1:{port}"
    loop = asyncio.new_event_loop()
    started = loop.run_until_complete(asyncio.start_server(server.handle, "127.0.0.1", port))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(_stop(started), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


async def _stop(server: asyncio.Server) -> None:
    """Stop listening and end the handlers of connections still open."""
    server.close()
    tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await server.wait_closed()


def download(server: Scripted, dest: Path, **options: float) -> SourceError | None:
    async def run() -> None:
        async with SourceClient(server.url, backoff=0.01, **options) as client:  # type: ignore[arg-type]
            await client.download("api/v2/section_image_download/1", {"downsample": 2}, dest)

    try:
        asyncio.run(run())
    except SourceError as exc:
        return exc
    return None


def test_retry_after_is_honoured(tmp_path: Path) -> None:
    with scripted(status(503, "Service Unavailable", "Retry-After: 1\r\n"), ok()) as server:
        assert download(server, tmp_path / "out.jpg") is None
    assert len(server.times) == 2
    assert server.times[1] - server.times[0] >= 0.95
    assert (tmp_path / "out.jpg").read_bytes() == b"0123456789" * 100
    assert server.targets[0] == "/api/v2/section_image_download/1?downsample=2"


@pytest.mark.parametrize("value, seconds", [("3", 3.0), ("99999", 120.0), ("soon", None), (None, None)])
def test_retry_after_values(value: str | None, seconds: float | None) -> None:
    assert retry_after(value) == seconds


def test_retry_after_as_a_date() -> None:
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    wait = retry_after(date)
    assert wait is not None and 28 <= wait <= 30


def test_a_4xx_is_not_retried_and_names_the_url(tmp_path: Path) -> None:
    with scripted(status(404, "Not Found"), ok()) as server:
        error = download(server, tmp_path / "out.jpg")
    assert error is not None and error.status == 404
    assert "section_image_download/1" in error.message and "HTTP 404: nope" in error.message
    assert len(server.targets) == 1
    assert not list(tmp_path.iterdir())


def test_a_body_cut_short_is_fetched_again(tmp_path: Path) -> None:
    with scripted(cut_short(), ok()) as server:
        assert download(server, tmp_path / "out.jpg") is None
    assert len(server.targets) == 2
    assert (tmp_path / "out.jpg").stat().st_size == 1000
    assert [path.name for path in tmp_path.iterdir()] == ["out.jpg"]


def test_giving_up_leaves_no_file(tmp_path: Path) -> None:
    with scripted(status(502, "Bad Gateway")) as server:
        error = download(server, tmp_path / "out.jpg", attempts=3)
    assert error is not None and "HTTP 502 (gave up after 3 attempts)" in error.message
    assert len(server.targets) == 3
    assert not list(tmp_path.iterdir())


def test_timeouts_are_retried(tmp_path: Path) -> None:
    with scripted(ok(), delay=0.6) as server:
        error = download(server, tmp_path / "out.jpg", attempts=2, timeout=0.2)
    assert error is not None and "timed out" in error.message
    assert len(server.targets) == 2


def test_concurrency_is_bounded(tmp_path: Path) -> None:
    async def run(server: Scripted) -> None:
        async with SourceClient(server.url, concurrency=3) as client:
            await asyncio.gather(*(client.download("x", {"n": n}, tmp_path / f"{n}.jpg") for n in range(12)))

    with scripted(ok(), delay=0.05) as server:
        asyncio.run(run(server))
    assert len(server.targets) == 12
    assert server.peak == 3


def test_queries_are_read_page_by_page(live_server: str) -> None:
    async def run(page_rows: int) -> list[dict[str, object]]:
        async with SourceClient(live_server, page_rows=page_rows) as client:
            return await client.query("model::SectionImage,rma::criteria,[id$gt0]")

    paged, whole = asyncio.run(run(2)), asyncio.run(run(2000))
    assert [record["id"] for record in whole] == [2001, 2002, 2101, 2102]  # 3001 is an AtlasImage
    assert paged == whole


def test_a_failed_query_names_the_servers_message(live_server: str) -> None:
    async def run() -> None:
        async with SourceClient(live_server) as client:
            await client.query("model::Gene")

    with pytest.raises(SourceError, match="unknown or unsupported model 'Gene'"):
        asyncio.run(run())
