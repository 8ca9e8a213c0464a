"""A real S3-protocol server for tests (moto's standalone server) and a fault-injecting proxy in front of it.

`MotoServer` runs `python -m moto.server` on a free loopback port. moto checks no signatures, so
buckets are created with a plain unsigned `PUT /<bucket>` (`create_bucket`).

`FaultProxy` is an HTTP/1.1 proxy on loopback between a store client and the server. Each request
is read whole, counted by method (GET, HEAD, PUT, POST, DELETE; a bucket listing counts as LIST),
then, as the test has switched it: passed through (after an optional fixed delay), answered with
`503 SlowDown`, or dropped (the connection closed without an answer). Every request goes upstream
on a connection of its own and its answer carries `Connection: close`, so the client opens one
connection per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import TracebackType

from tests.conftest import free_port

#: Dummy credentials: moto accepts any.
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}

SLOW_DOWN_BODY = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message>"
    b"<RequestId>fault-proxy</RequestId></Error>"
)
SLOW_DOWN = (
    b"HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nContent-Length: "
    + str(len(SLOW_DOWN_BODY)).encode()
    + b"\r\nConnection: close\r\n\r\n"
    + SLOW_DOWN_BODY
)


class MotoServer:
    """moto's S3 server as a subprocess on `127.0.0.1:<free port>`; `url` is its endpoint."""

    def __init__(self, start_timeout: float = 30.0) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._start_timeout = start_timeout
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> MotoServer:
        command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]
        self._process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **CREDENTIALS}
        )
        deadline = time.monotonic() + self._start_timeout
        while not self._answers():
            if self._process.poll() is not None:
                raise RuntimeError(f"moto server exited with status {self._process.returncode}")
            if time.monotonic() > deadline:
                self._stop()
                raise RuntimeError(f"moto server did not answer on {self.url} within {self._start_timeout} s")
            time.sleep(0.05)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self._stop()

    def create_bucket(self, name: str) -> None:
        """Create bucket `name` (an unsigned CreateBucket; moto checks no signatures)."""
        request = urllib.request.Request(f"{self.url}/{name}", method="PUT")
        with urllib.request.urlopen(request, timeout=10) as response:
            if response.status != 200:
                raise RuntimeError(f"CreateBucket {name} answered {response.status}")

    def put_object(self, bucket: str, key: str, data: bytes) -> None:
        """Store `data` at `key` of `bucket` (an unsigned single PUT)."""
        request = urllib.request.Request(
            f"{self.url}/{bucket}/{key}", data=data, method="PUT", headers={"Content-Type": "application/octet-stream"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            if response.status != 200:
                raise RuntimeError(f"PutObject {bucket}/{key} answered {response.status}")

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/", timeout=1) as response:
                return bool(response.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def _stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()


@dataclass
class Request:
    """One request the proxy received: counted method, target (path and query), Range header, fate."""

    method: str
    target: str
    range: str | None
    fate: str  # "passed", "slowdown" or "dropped"


@dataclass
class _Faults:
    slowdown: int = 0
    drop: int = 0
    delay: float = 0.0
    requests: list[Request] = field(default_factory=list)


class FaultProxy:
    """An HTTP proxy on `127.0.0.1:<free port>` forwarding to `upstream` ("host:port"), faults switchable at run time.

    Runs its own asyncio loop in a daemon thread. Switches (thread-safe, take effect for the next
    requests): `slow_down(n)` answers the next n requests with 503 SlowDown; `drop(n)` closes the
    connection of the next n requests unanswered; `delay` (seconds) is added before every request
    is forwarded. `counts` counts requests by method, `requests` lists them; `reset()` clears
    switches and counters.
    """

    def __init__(self, upstream: str) -> None:
        host, _, port = upstream.rpartition(":")
        self._upstream = (host, int(port))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._lock = threading.Lock()
        self._faults = _Faults()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault-proxy", daemon=True)
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        self._server = future.result(timeout=10)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    # switches and counters

    def slow_down(self, count: int) -> None:
        """Answer the next `count` requests with 503 SlowDown."""
        with self._lock:
            self._faults.slowdown = count

    def drop(self, count: int) -> None:
        """Close the connection of the next `count` requests without answering."""
        with self._lock:
            self._faults.drop = count

    @property
    def delay(self) -> float:
        with self._lock:
            return self._faults.delay

    @delay.setter
    def delay(self, seconds: float) -> None:
        with self._lock:
            self._faults.delay = seconds

    @property
    def requests(self) -> list[Request]:
        with self._lock:
            return list(self._faults.requests)

    @property
    def counts(self) -> Counter[str]:
        """Requests received (whatever their fate) by method; bucket listings count as LIST."""
        return Counter(request.method for request in self.requests)

    def reset(self) -> None:
        """Pass everything through undelayed and forget the requests seen so far."""
        with self._lock:
            self._faults = _Faults()

    # the proxy

    async def _start(self) -> asyncio.Server:
        return await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def _stop(self) -> None:
        """Stop listening and end the connections still open (idle ones, or a request held by `delay`)."""
        if self._server is not None:
            self._server.close()
        await asyncio.sleep(0)  # let connections accepted just before run their handlers' first step
        while tasks := [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Handle the one request of a client connection, then close it."""
        # asyncio (3.11) drops its reference to this task when the client disconnects: hold one
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            # a handler cancelled by `_stop` ends quietly (asyncio 3.11 would log its cancellation as an error)
            with contextlib.suppress(
                ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.CancelledError
            ):
                await self._one_request(reader, writer)
        finally:
            writer.close()
            self._handlers.discard(task)

    async def _one_request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        method, target, headers = _parse_head(head)
        body = await _read_body(reader, headers)
        fate, delay = self._decide(method, target, headers)
        if delay:
            await asyncio.sleep(delay)
        if fate == "slowdown":
            writer.write(SLOW_DOWN)
            await writer.drain()
        elif fate == "passed":
            await self._forward(_close_after(head), body, writer)

    def _decide(self, method: str, target: str, headers: dict[str, str]) -> tuple[str, float]:
        counted = "LIST" if method == "GET" and "list-type=" in target else method
        with self._lock:
            faults = self._faults
            if faults.drop > 0:
                faults.drop -= 1
                fate = "dropped"
            elif faults.slowdown > 0:
                faults.slowdown -= 1
                fate = "slowdown"
            else:
                fate = "passed"
            faults.requests.append(Request(counted, target, headers.get("range"), fate))
            return fate, faults.delay

    async def _forward(self, head: bytes, body: bytes, writer: asyncio.StreamWriter) -> None:
        """Send the request upstream on a new connection and relay the whole answer (upstream closes after it)."""
        upstream_reader, upstream_writer = await asyncio.open_connection(*self._upstream)
        try:
            upstream_writer.write(head + body)
            await upstream_writer.drain()
            answer_head = await upstream_reader.readuntil(b"\r\n\r\n")
            writer.write(_close_after(answer_head))
            while chunk := await upstream_reader.read(1 << 16):
                writer.write(chunk)
                await writer.drain()
        finally:
            upstream_writer.close()


def _parse_head(head: bytes) -> tuple[str, str, dict[str, str]]:
    """Method, target and headers (names lower-cased) of a request head."""
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    return method, target, headers


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    """The request body: Content-Length bytes, or the raw chunked encoding up to its last chunk."""
    if "content-length" in headers:
        return await reader.readexactly(int(headers["content-length"]))
    if headers.get("transfer-encoding", "").lower() != "chunked":
        return b""
    body = bytearray()
    while True:
        size_line = await reader.readuntil(b"\r\n")
        body += size_line
        size = int(size_line.split(b";")[0].strip(), 16)
        body += await reader.readexactly(size + 2)
        if size == 0:
            return bytes(body)


def _close_after(head: bytes) -> bytes:
    """A message head with its Connection header replaced by `Connection: close`."""
    lines = [line for line in head.split(b"\r\n") if line and not line.lower().startswith(b"connection:")]
    return b"\r\n".join([*lines, b"Connection: close", b"", b""])


@contextlib.contextmanager
def fault_proxy(upstream_url: str) -> Iterator[FaultProxy]:
    """A `FaultProxy` in front of the server at `upstream_url` ("http://host:port")."""
    with FaultProxy(upstream_url.removeprefix("http://")) as proxy:
        yield proxy


@contextlib.contextmanager
def aws_environment(endpoint: str) -> Iterator[None]:
    """`CREDENTIALS` and `AWS_ENDPOINT_URL=endpoint` in `os.environ` for the block, restored afterwards."""
    saved = {name: os.environ.get(name) for name in [*CREDENTIALS, "AWS_ENDPOINT_URL"]}
    os.environ.update(CREDENTIALS)
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
