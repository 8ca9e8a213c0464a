"""uvicorn's httptools protocol with bounded request heads, idle connections closed, and writes held
to the end of the event loop's turn (`CoalescingWriter`: a whole response leaves in one write).

httptools sets no limit on the request line or the header fields, so an attacker could make a
worker buffer megabytes per connection. `BoundedHttpToolsProtocol` counts the bytes of every request
head as they arrive and refuses, with a JSON body and the connection closed:
- a request target longer than `max_query_length` plus `PATH_ALLOWANCE` bytes: 414;
- a header line (name, colon, value) longer than `max_header_line` bytes: 431;
- header fields longer than `max_header_bytes` in all, or a head that keeps arriving beyond the
  request line and header limits together (counted before the parser buffers it): 431.
Request bodies are not counted. These refusals never reach the app: the metrics count them here
(`tierserve_refusals`), and the access log does not list them.
A connection is closed when no complete request head arrives within `idle_timeout` seconds of the
connection being made or of the previous response (slow heads included; uvicorn's keep-alive timer
alone stops counting at the first byte). In a worker of a socket per worker, connections are counted
in the workers' shared table and one is closed after its response when the worker holds more than its
share (`api.balance`).

The limits come from the settings of the worker process (`TIERSERVE_*`, exported by `tierserve serve`).
"""

from __future__ import annotations

import asyncio
import functools
import json
from dataclasses import dataclass
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from tierserve.api import balance
from tierserve.metrics import count_refusal
from tierserve.settings import Settings

#: Bytes of path and method the request line may hold besides a query string of `max_query_length`.
PATH_ALLOWANCE = 8192


@dataclass(frozen=True, slots=True)
class HeadLimits:
    """Request head limits in bytes, and the idle timeout in seconds."""

    max_target: int
    max_header_line: int
    max_header_bytes: int
    idle_timeout: float

    @classmethod
    def from_settings(cls, settings: Settings) -> HeadLimits:
        return cls(
            max_target=settings.max_query_length + PATH_ALLOWANCE,
            max_header_line=settings.max_header_line,
            max_header_bytes=settings.max_header_bytes,
            idle_timeout=settings.idle_timeout,
        )

    @property
    def max_head(self) -> int:
        """Bytes a whole request head may take: request line, header fields and line ends."""
        return self.max_target + self.max_header_bytes + 2 * self.max_header_line


@functools.cache
def process_limits() -> HeadLimits:
    """The limits of this worker process, read once from its settings."""
    return HeadLimits.from_settings(Settings())


class _Refused(Exception):
    """Raised in a parser callback to stop parsing a request that breaks the limit (setting) `limit`."""

    def __init__(self, status: int, message: str, limit: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.limit = limit


#: Bytes a connection holds at most before it writes them: uvloop's default high-water mark, so a
#: streamed body meets flow control (pause_writing, drain) as it would without holding.
HOLD_BYTES = 64 * 1024


class CoalescingWriter:
    """A connection's transport whose writes are held until the event loop has run what was ready
    (`loop.call_soon`), then sent in one `writelines` (one writev system call on uvloop).

    A whole response (its head, then its body in the same step of its task) so leaves in one write
    instead of two, and under load a worker answers the requests of one turn of the loop, then
    writes their answers: measured, this costs less CPU per request than writing each at once
    (docs/performance.md). Held bytes are written at once when they reach `HOLD_BYTES`, before the
    connection closes or ends its output, when an answer completes with no other in progress in the
    worker (`BoundedHttpToolsProtocol.on_response_complete`: nothing to batch with, so no wait), and
    dropped when the connection is lost or aborted. The protocol and its request cycles all write
    through it, so bytes keep their order."""

    __slots__ = ("_held", "_held_bytes", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []
        self._held_bytes = 0

    def write(self, data: bytes) -> None:
        if not self._held:
            self._loop.call_soon(self.flush)
        self._held.append(data if type(data) is bytes else bytes(data))  # a caller may reuse its buffer
        self._held_bytes += len(data)
        if self._held_bytes >= HOLD_BYTES:
            self.flush()

    def flush(self) -> None:
        """Write what is held, in one call; nothing when it has been written or dropped already."""
        if self._held:
            held, self._held, self._held_bytes = self._held, [], 0
            if len(held) == 1:
                self._transport.write(held[0])
            else:
                self._transport.writelines(held)

    def discard(self) -> None:
        """Drop what is held (the connection is gone)."""
        self._held, self._held_bytes = [], 0

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self.discard()
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + self._held_bytes

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """`HttpToolsProtocol` enforcing `HeadLimits` (module docstring)."""

    def __init__(self, *args: Any, limits: HeadLimits | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits or process_limits()
        self._head_bytes = 0
        self._header_bytes = 0
        self._in_body = False
        self._refusal: _Refused | None = None
        self._idle_timer: asyncio.TimerHandle | None = None
        self._share = balance.current
        self._leaving = False

    # connection events

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._writer = CoalescingWriter(transport, self.loop)
        self.transport = self._writer  # type: ignore[assignment]  # every write goes through it
        if self._share is not None:
            self._share.opened()
        self._arm_idle_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._writer.discard()
        self._cancel_idle_timer()
        if self._share is not None:
            self._share.closed(self._leaving)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        if not self._in_body:
            self._head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._unsupported_upgrade_warning()
        except httptools.HttpParserError:
            if self._refusal is not None:
                self._refuse(self._refusal.status, self._refusal.message, self._refusal.limit)
            else:
                self.logger.warning("Invalid HTTP request received.")
                self.send_400_response("Invalid HTTP request received.")
            return
        if self._head_bytes > self.limits.max_head and not self.transport.is_closing():
            self._refuse(431, f"the request head exceeds {self.limits.max_head} bytes", "max_header_bytes")

    def on_response_complete(self) -> None:
        if len(self.tasks) <= 1:  # no other answer in progress in this worker: none to write it with
            self._writer.flush()
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_idle_timer()

    # parser callbacks

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = 0

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > self.limits.max_target:
            self._stop(414, f"the request target exceeds {self.limits.max_target} bytes", "max_query_length")

    def on_header(self, name: bytes, value: bytes) -> None:
        line = len(name) + 2 + len(value)
        if line > self.limits.max_header_line:
            self._stop(431, f"a request header line exceeds {self.limits.max_header_line} bytes", "max_header_line")
        self._header_bytes += line + 2
        if self._header_bytes > self.limits.max_header_bytes:
            self._stop(
                431, f"the request header fields exceed {self.limits.max_header_bytes} bytes", "max_header_bytes"
            )
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._head_bytes = 0
        self._in_body = True
        self._cancel_idle_timer()
        previous = self.cycle
        super().on_headers_complete()
        if self._share is not None and self.cycle is not previous and self.cycle is not None:  # a new request
            self._rebalance(previous, self.cycle)

    def on_message_complete(self) -> None:
        self._in_body = False
        super().on_message_complete()

    # rebalancing (api.balance)

    def _rebalance(self, previous: Any, cycle: Any) -> None:
        """Mark the connection of new request `cycle` to close after its response when this worker holds
        more than its share; a request pipelined behind a marked one whose answer has not started
        unmarks it (closing would drop this request)."""
        assert self._share is not None
        if self.pipeline:
            if self._leaving and previous is not None and not previous.response_started:
                previous.keep_alive = True
                self._leaving = False
                self._share.unmark()
            return
        if not self._leaving and cycle.keep_alive and self._share.should_close():
            cycle.keep_alive = False  # the answer says connection: close, then uvicorn closes the connection
            self._leaving = True

    # refusals and the idle timer

    def _stop(self, status: int, message: str, limit: str) -> None:
        self._refusal = _Refused(status, message, limit)
        raise self._refusal

    def _refuse(self, status: int, message: str, limit: str) -> None:
        """Answer `status` with a JSON error body and close the connection; count the refusal by `limit`."""
        self.logger.warning("refused a request: %s", message)
        count_refusal(limit)
        body = json.dumps({"success": False, "msg": message}).encode()
        head = b"content-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n" % len(body)
        self.transport.write(STATUS_LINE[status] + head + body)
        self.transport.close()

    def _arm_idle_timer(self) -> None:
        self._cancel_idle_timer()
        self._idle_timer = self.loop.call_later(self.limits.idle_timeout, self._close_if_idle)

    def _cancel_idle_timer(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None

    def _close_if_idle(self) -> None:
        """Close the connection unless a request is being answered or waits in the pipeline."""
        self._idle_timer = None
        busy = (self.cycle is not None and not self.cycle.response_complete) or bool(self.pipeline)
        if not busy and not self.transport.is_closing():
            self.transport.close()
