"""The server bounds request heads (414 and 431 with a JSON body, memory flat) and closes idle connections.

A real uvicorn server with tierserve's protocol on loopback, spoken to over raw sockets.
"""

from __future__ import annotations

import json
import resource
import socket
import time
from collections.abc import Iterator

import pytest

from tests.conftest import Collection, serving
from tierserve.api.app import create_app

#: The server's idle timeout in these tests (seconds).
IDLE = 0.6
TILE = "/api/v2/section_image_download/2001?left=0&top=0&width=64&height=64"


@pytest.fixture(scope="module")
def server(collection: Collection) -> Iterator[tuple[str, int]]:
    settings = collection.settings.model_copy(update={"idle_timeout": IDLE})
    with serving(create_app(settings), settings) as running:
        yield "127.0.0.1", running.config.port


def _connect(address: tuple[str, int]) -> socket.socket:
    return socket.create_connection(address, timeout=10)


def _read_answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of one answer read until the connection closes or Content-Length is met."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed after {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    while len(body) < int(headers.get("content-length", "0")):
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), headers, body


def _closed(sock: socket.socket) -> bool:
    """Whether the peer closed the connection (a read returns end of file or a reset)."""
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def _request(target: str, headers: list[str]) -> bytes:
    return f"GET {target} HTTP/1.1\r\nHost: test\r\n{''.join(h + chr(13) + chr(10) for h in headers)}\r\n".encode()


@pytest.mark.parametrize(
    ("target", "headers", "status", "message"),
    [
        (TILE, [f"X-Long: {'a' * 9000}"], 431, "a request header line exceeds 8192 bytes"),
        (TILE, [f"X-Many-{i}: {'b' * 7000}" for i in range(6)], 431, "the request header fields exceed 32768 bytes"),
        ("/api/v2/section_image_download/2001?" + "q" * 30000, [], 414, "the request target exceeds 24576 bytes"),
    ],
)
def test_an_oversized_head_is_refused_with_a_json_body(
    server: tuple[str, int], target: str, headers: list[str], status: int, message: str
) -> None:
    with _connect(server) as sock:
        sock.sendall(_request(target, headers))
        answer, head, body = _read_answer(sock)
        assert answer == status
        assert head["connection"] == "close" and head["content-type"] == "application/json"
        assert json.loads(body) == {"success": False, "msg": message}
        assert _closed(sock)


def test_a_32_mb_header_is_cut_off_early_and_costs_no_memory(server: tuple[str, int]) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with _connect(server) as sock:
        sock.sendall(b"GET " + TILE.encode() + b" HTTP/1.1\r\nHost: test\r\nX-Huge: ")
        sent = 0
        try:
            while sent < 32 * 1024 * 1024:
                sock.sendall(b"c" * 65536)
                sent += 65536
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert sent < 16 * 1024 * 1024, f"the server kept reading one header for {sent} bytes"
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 16 * 1024, f"peak RSS grew by {grown_kib} KiB"


def test_requests_within_the_limits_pass(server: tuple[str, int]) -> None:
    with _connect(server) as sock:
        sock.sendall(_request(TILE, [f"X-Fine-{i}: {'d' * 7000}" for i in range(4)]))
        status, headers, body = _read_answer(sock)
        assert status == 200 and headers["content-type"] == "image/jpeg" and len(body) > 0


def test_a_request_body_is_not_counted_as_head(server: tuple[str, int]) -> None:
    body = b"e" * 200_000
    with _connect(server) as sock:
        head = f"POST {TILE} HTTP/1.1\r\nHost: test\r\nContent-Length: {len(body)}\r\n\r\n"
        sock.sendall(head.encode() + body)
        status, headers, answer = _read_answer(sock)
        assert status == 405 and headers["allow"] == "GET, HEAD"
        assert json.loads(answer)["msg"] == "Method Not Allowed"


def test_an_idle_connection_is_closed(server: tuple[str, int]) -> None:
    with _connect(server) as sock:
        started = time.monotonic()
        assert _closed(sock)
        assert IDLE * 0.8 < time.monotonic() - started < IDLE + 5


def test_a_slow_head_is_closed_and_a_kept_alive_connection_after_its_answer(server: tuple[str, int]) -> None:
    with _connect(server) as sock:
        sock.sendall(b"GET " + TILE.encode() + b" HTTP/1.1\r\nHost: te")
        time.sleep(IDLE / 3)
        sock.sendall(b"st\r\nX-Slow: ")
        started = time.monotonic()
        assert _closed(sock)
        assert time.monotonic() - started < IDLE + 5
    with _connect(server) as sock:
        sock.sendall(_request(TILE, []))
        assert _read_answer(sock)[0] == 200
        started = time.monotonic()
        assert _closed(sock)
        assert IDLE * 0.8 < time.monotonic() - started < IDLE + 5


def test_a_connection_in_use_is_kept(server: tuple[str, int]) -> None:
    with _connect(server) as sock:
        for _ in range(3):
            sock.sendall(_request(TILE, []))
            assert _read_answer(sock)[0] == 200
            time.sleep(IDLE / 2)
