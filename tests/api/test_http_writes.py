"""A connection's writes leave together at the end of the loop's turn (at once past a bound), in order.

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
import uvicorn
import uvloop

from tests.api.test_http_limits import TILE, _request
from tests.conftest import Collection, serving
from tierserve.api.app import create_app
from tierserve.api.http_protocol import HOLD_BYTES, CoalescingWriter

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


class Recording:
    """A real transport that records the writes it is asked for."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.calls: list[tuple[str, bytes]] = []

    def write(self, data: bytes) -> None:
        self.calls.append(("write", bytes(data)))
        self.transport.write(data)

    def writelines(self, items: list[bytes]) -> None:
        self.calls.append(("writelines", b"|".join(items)))
        self.transport.writelines(items)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


async def _writer_and_peer() -> tuple[CoalescingWriter, Recording, socket.socket]:
    """A writer over a real transport on one end of a socket pair (its writes recorded), and the other
    end (non-blocking)."""
    ours, theirs = socket.socketpair()
    theirs.setblocking(False)
    loop = asyncio.get_running_loop()
    transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, ours)
    recording = Recording(transport)  # type: ignore[arg-type]
    return CoalescingWriter(recording, loop), recording, theirs  # type: ignore[arg-type]


def _received(peer: socket.socket) -> bytes:
    """What the peer can read now (b"" when nothing has arrived)."""
    try:
        return peer.recv(65536)
    except BlockingIOError:
        return b""


def test_a_turns_writes_leave_together_at_its_end(run: Callable[..., None]) -> None:
    async def scenario() -> None:
        writer, recording, peer = await _writer_and_peer()
        head = bytearray(HEAD)
        writer.write(head)  # type: ignore[arg-type]  # a buffer its writer reuses at once
        head[:] = b"x" * len(head)
        writer.write(b"body")
        assert _received(peer) == b"" and writer.get_write_buffer_size() == len(HEAD) + 4
        await asyncio.sleep(0.05)
        assert recording.calls == [("writelines", HEAD + b"|body")]
        assert _received(peer) == HEAD + b"body"
        writer.write(HEAD)  # alone in its turn (a HEAD answer)
        await asyncio.sleep(0.05)
        assert recording.calls[1:] == [("write", HEAD)]
        assert _received(peer) == HEAD
        writer.close()
        peer.close()

    run(scenario())


def test_writes_reaching_the_bound_leave_at_once(run: Callable[..., None]) -> None:
    async def scenario() -> None:
        writer, recording, peer = await _writer_and_peer()
        writer.write(HEAD)
        writer.write(b"a" * (HOLD_BYTES - len(HEAD) - 1))
        assert recording.calls == []
        writer.write(b"b")  # the bound: written now, so flow control sees it
        assert [name for name, _ in recording.calls] == ["writelines"]
        assert writer.get_write_buffer_size() == recording.transport.get_write_buffer_size()
        await asyncio.sleep(0.05)
        assert len(recording.calls) == 1  # nothing left for the end of the turn
        received = b""
        while len(received) < HOLD_BYTES:
            received += _received(peer)
            await asyncio.sleep(0.01)
        assert received == HEAD + b"a" * (HOLD_BYTES - len(HEAD) - 1) + b"b"
        writer.close()
        peer.close()

    run(scenario())


def test_closing_writes_what_is_held_first_and_a_lost_connection_drops_it(run: Callable[..., None]) -> None:
    async def scenario() -> None:
        for end in (CoalescingWriter.close, CoalescingWriter.write_eof):
            writer, recording, peer = await _writer_and_peer()
            writer.write(HEAD)
            end(writer)
            await asyncio.sleep(0.05)
            assert recording.calls == [("write", HEAD)]
            assert _received(peer) == HEAD
            assert _received(peer) == b""  # then the end of the stream
            writer.close()
            peer.close()
        writer, recording, peer = await _writer_and_peer()
        writer.write(HEAD)
        writer.discard()
        await asyncio.sleep(0.05)
        assert recording.calls == [] and writer.get_write_buffer_size() == 0
        writer.close()
        assert writer.is_closing()
        peer.close()

    run(scenario())


@pytest.fixture(scope="module")
def server(collection: Collection) -> Iterator[uvicorn.Server]:
    """tierserve's protocol in a real uvicorn server on loopback (`address`)."""
    with serving(create_app(collection.settings), collection.settings) as running:
        yield running


def address(server: uvicorn.Server) -> tuple[str, int]:
    return "127.0.0.1", server.config.port


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


def test_every_connection_writes_through_a_coalescing_writer(server: uvicorn.Server) -> None:
    with socket.create_connection(address(server), timeout=10) as sock:
        sock.sendall(_request(TILE, []))
        status, headers, tile = Answers(sock).next()
        assert (status, headers["content-type"], tile[:2]) == (200, "image/jpeg", b"\xff\xd8")
        connections = list(server.server_state.connections)
        assert connections and all(isinstance(c.transport, CoalescingWriter) for c in connections)
        sock.sendall(f"HEAD {TILE} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
        sock.settimeout(2)  # an answer without body leaves too
        head = sock.recv(65536)
        assert head.startswith(b"HTTP/1.1 200 OK\r\n") and head.endswith(b"\r\n\r\n")


def test_pipelined_requests_are_answered_whole_and_in_order(server: uvicorn.Server) -> None:
    with socket.create_connection(address(server), timeout=10) as sock:
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
