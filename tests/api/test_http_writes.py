"""A connection's writes are held to the end of the event loop's turn and leave together, in order.

`CoalescingWriter` on real transports (a socket pair, on asyncio's loop and on uvloop's, which
`tierserve serve` runs), then tierserve's protocol in a real uvicorn server on loopback.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest
import uvloop

from tests.api.test_http_limits import TILE, _request
from tests.conftest import Collection, running_server
from tierserve.api.http_protocol import CoalescingWriter

HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\n"
LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,
}


@pytest.fixture(params=sorted(LOOPS))
def run(request: pytest.FixtureRequest) -> Callable[[Coroutine[Any, Any, None]], None]:
    """Runs a coroutine to completion on a fresh loop of each kind."""

    def run_on_loop(coroutine: Coroutine[Any, Any, None]) -> None:
        loop = LOOPS[request.param]()
        try:
            loop.run_until_complete(coroutine)
        finally:
            loop.close()

    return run_on_loop


async def _writer_and_peer() -> tuple[CoalescingWriter, socket.socket]:
    """A writer over a real transport on one end of a socket pair, and the other end (non-blocking)."""
    ours, theirs = socket.socketpair()
    theirs.setblocking(False)
    loop = asyncio.get_running_loop()
    transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, ours)
    return CoalescingWriter(transport, loop), theirs  # type: ignore[arg-type]


def _nothing_yet(peer: socket.socket) -> bool:
    try:
        peer.recv(65536)
    except BlockingIOError:
        return True
    return False


def test_a_head_and_its_body_leave_together_at_the_end_of_the_turn(run: Callable[..., None]) -> None:
    async def scenario() -> None:
        writer, peer = await _writer_and_peer()
        head = bytearray(HEAD)
        writer.write(head)  # type: ignore[arg-type]  # a buffer its writer reuses at once
        head[:] = b"x" * len(head)
        writer.write(b"body")
        assert _nothing_yet(peer)
        await asyncio.sleep(0)
        assert peer.recv(65536) == HEAD + b"body"
        writer.write(b"next")
        await asyncio.sleep(0)
        assert peer.recv(65536) == b"next"
        writer.close()
        peer.close()

    run(scenario())


def test_closing_writes_what_is_held_first(run: Callable[..., None]) -> None:
    async def scenario() -> None:
        writer, peer = await _writer_and_peer()
        writer.write(HEAD)
        writer.write(b"last")
        writer.close()
        assert writer.is_closing()
        await asyncio.sleep(0.05)
        assert peer.recv(65536) == HEAD + b"last"
        assert peer.recv(65536) == b""  # then the end of the stream
        peer.close()

    run(scenario())


def test_what_is_held_when_the_connection_is_lost_is_dropped(run: Callable[..., None]) -> None:
    async def scenario() -> None:
        writer, peer = await _writer_and_peer()
        writer.write(HEAD)
        writer.discard()
        await asyncio.sleep(0.05)
        assert _nothing_yet(peer)
        writer.close()
        peer.close()

    run(scenario())


@pytest.fixture(scope="module")
def address(collection: Collection) -> Iterator[tuple[str, int]]:
    with running_server(collection.settings) as base:
        host, port = base.removeprefix("http://").split(":")
        yield host, int(port)


class Answers:
    """Reads the answers of one connection one after the other (Content-Length framed)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed after {self.buffer[:200]!r}")
        self.buffer += chunk

    def next(self) -> tuple[int, dict[str, str], bytes]:
        """Status, headers and body of the next answer."""
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        while len(self.buffer) < length:
            self._fill()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return int(lines[0].split()[1]), headers, body


def test_pipelined_requests_are_answered_whole_and_in_order(address: tuple[str, int]) -> None:
    with socket.create_connection(address, timeout=10) as sock:
        sock.sendall(_request(TILE, []) + _request("/healthz", []) + _request(TILE, ["If-None-Match: *"]))
        answers = Answers(sock)
        tile_status, tile_headers, tile = answers.next()
        assert (tile_status, tile_headers["content-type"]) == (200, "image/jpeg")
        assert tile[:2] == b"\xff\xd8" and tile[-2:] == b"\xff\xd9"
        health_status, health_headers, health = answers.next()
        assert (health_status, health_headers["content-type"]) == (200, "application/json")
        assert json.loads(health)["success"] is True
        not_modified_status, not_modified_headers, not_modified = answers.next()
        assert (not_modified_status, not_modified) == (304, b"")
        assert not_modified_headers["etag"] == tile_headers["etag"]
        sock.settimeout(0.3)
        with pytest.raises(TimeoutError):
            answers.next()  # nothing more: three requests, three answers
        assert answers.buffer == b""
