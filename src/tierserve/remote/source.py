"""The client of an Allen-compatible server, shared by `tierserve mirror` and `tierserve download`.

`SourceClient` owns one `httpx2.AsyncClient` (connection pool, timeouts) and adds what a polite bulk
client needs: at most `concurrency` requests in flight, retries with exponential backoff on 5xx and 429
answers, timeouts, refused and dropped connections and truncated bodies (Retry-After honoured, capped),
data-API queries read page by page, and image downloads streamed to a file that appears complete or not
at all. What it has done is counted in `SourceStats` (progress displays read it).

SourceError            a request failed for good: a 4xx answer, or retries used up (names the URL)
 └─ QueryFailed        the data API answered success=false
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urlencode

import httpx2

from tierserve import __version__

#: Statuses worth asking again: the server or something in front of it is overloaded or restarting.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
#: Rows asked for per data-API page.
PAGE_ROWS = 2000
#: Longest wait honoured from a Retry-After header, seconds.
MAX_RETRY_AFTER = 120.0
#: Bytes written per chunk of a streamed body.
CHUNK = 1 << 20

T = TypeVar("T")


class SourceError(Exception):
    """A request to the source failed for good; `message` names the URL and the reason, `status` is the
    HTTP status of a refused request (None when the source could not be reached)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class QueryFailed(SourceError):
    """The data API answered a query with success=false."""


@dataclass
class SourceStats:
    """What the client has done so far (all requests, retries included)."""

    requests: int = 0
    retries: int = 0
    bytes: int = 0


@dataclass(frozen=True)
class Downloaded:
    """A body saved to a file: its media type and size in bytes."""

    path: Path
    content_type: str
    size: int


class _Retry(Exception):
    """One attempt failed in a way worth retrying; `wait` is the server's Retry-After, if any."""

    def __init__(self, reason: str, wait: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wait = wait


class SourceClient:
    """An async client of one Allen-compatible server at `base_url` (e.g. ``https://api.brain-map.org``).

    Use as ``async with SourceClient(url) as source:``. `attempts` counts the first try; waits between
    attempts grow from `backoff` seconds (doubling, with jitter, at most 30 s) unless the answer says
    how long to wait. Data-API queries are read `page_rows` records at a time. `transport` replaces
    the network (proxies).
    """

    def __init__(
        self,
        base_url: str,
        *,
        concurrency: int = 4,
        timeout: float = 60.0,
        attempts: int = 6,
        backoff: float = 0.5,
        page_rows: int = PAGE_ROWS,
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        if concurrency < 1 or attempts < 1:
            raise ValueError("concurrency and attempts must be at least 1")
        self.base_url = base_url.rstrip("/")
        self.attempts = attempts
        self.backoff = backoff
        self.page_rows = page_rows
        self.stats = SourceStats()
        self._slots = asyncio.Semaphore(concurrency)
        self._http = httpx2.AsyncClient(
            base_url=self.base_url,
            timeout=httpx2.Timeout(timeout, connect=min(timeout, 15.0)),
            limits=httpx2.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            headers={"User-Agent": f"tierserve/{__version__}"},
            follow_redirects=True,
            transport=transport,
        )

    async def __aenter__(self) -> SourceClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._http.aclose()

    def url(self, path: str, params: Mapping[str, str | int] | None = None) -> str:
        """The absolute URL of `path` (from the server root) with `params`, as requests send it."""
        query = f"?{urlencode(params)}" if params else ""
        return f"{self.base_url}/{path.lstrip('/')}{query}"

    async def query(self, rma: str) -> list[dict[str, Any]]:
        """Every record of the data-API query `rma` (``model::...``, without ``rma::options``), read in
        pages of `page_rows` rows; raises QueryFailed when the server says success=false."""
        records: list[dict[str, Any]] = []
        while True:
            page_query = f"{rma},rma::options[num_rows$eq{self.page_rows}][start_row$eq{len(records)}]"
            page = await self._json("api/v2/data/query.json", {"q": page_query})
            if not page.get("success", False):
                raise QueryFailed(f"query {rma!r} failed at {self.base_url}: {page.get('msg')}")
            rows = page.get("msg")
            if not isinstance(rows, list):
                raise QueryFailed(f"query {rma!r} at {self.base_url} did not answer a list of records")
            records.extend(rows)
            total = int(page.get("total_rows", len(records)))
            if not rows or len(records) >= total:
                return records

    async def _json(self, path: str, params: Mapping[str, str]) -> dict[str, Any]:
        url = self.url(path, params)

        async def attempt() -> dict[str, Any]:
            response = await self._http.get(url)
            await self._check(response)
            self.stats.bytes += len(response.content)
            try:
                body = response.json()
            except ValueError as exc:
                raise SourceError(f"{url}: the answer is not JSON") from exc
            if not isinstance(body, dict):
                raise SourceError(f"{url}: the answer is not a JSON object")
            return body

        return await self._with_retries(url, attempt)

    async def download(self, path: str, params: Mapping[str, str | int], dest: Path) -> Downloaded:
        """Stream the answer to GET `path` with `params` into `dest`.

        The body is written to ``dest`` + ``.part`` and renamed once complete (its length checked
        against Content-Length), so `dest` either holds a whole answer or does not exist.
        """
        url = self.url(path, params)
        partial = dest.with_name(dest.name + ".part")

        async def attempt() -> Downloaded:
            try:
                async with self._http.stream("GET", url) as response:
                    await self._check(response)
                    expected = response.headers.get("Content-Length")
                    size = 0
                    with partial.open("wb") as out:
                        async for chunk in response.aiter_bytes(CHUNK):
                            out.write(chunk)
                            size += len(chunk)
                            self.stats.bytes += len(chunk)
                    # Content-Length counts the bytes on the wire (compressed, if the server compressed)
                    if expected is not None and response.num_bytes_downloaded != int(expected):
                        raise _Retry(f"body cut short: {response.num_bytes_downloaded} of {expected} bytes")
                    content_type = response.headers.get("Content-Type", "")
            except BaseException:
                partial.unlink(missing_ok=True)
                raise
            partial.replace(dest)
            return Downloaded(dest, content_type.split(";")[0].strip(), size)

        return await self._with_retries(url, attempt)

    async def _with_retries(self, url: str, attempt: Callable[[], Awaitable[T]]) -> T:
        """Run `attempt()` in a concurrency slot until it succeeds, fails for good, or attempts run out."""
        reason = ""
        for number in range(1, self.attempts + 1):
            wait: float | None = None
            async with self._slots:
                self.stats.requests += 1
                try:
                    return await attempt()
                except _Retry as exc:
                    reason, wait = exc.reason, exc.wait
                except httpx2.TimeoutException:
                    reason = "timed out"
                except (httpx2.TransportError, httpx2.DecodingError) as exc:
                    reason = f"connection failed: {type(exc).__name__}: {exc}".rstrip(": ")
            if number < self.attempts:
                self.stats.retries += 1
                await asyncio.sleep(wait if wait is not None else self._backoff(number))
        raise SourceError(f"{url}: {reason} (gave up after {self.attempts} attempts)")

    def _backoff(self, number: int) -> float:
        """Seconds to wait after failed attempt `number` (1-based): doubling from `backoff`, jittered."""
        return min(30.0, self.backoff * 2.0 ** (number - 1)) * random.uniform(0.5, 1.0)

    @staticmethod
    async def _check(response: httpx2.Response) -> None:
        """Raise _Retry for an answer worth retrying, SourceError for any other non-2xx answer."""
        status = response.status_code
        if status < 300:
            return
        if status in RETRY_STATUSES:
            raise _Retry(f"HTTP {status}", retry_after(response.headers.get("Retry-After")))
        await response.aread()
        raise SourceError(f"{response.request.url}: HTTP {status}: {_error_text(response)}", status)


def retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delay-seconds or an HTTP date), capped at
    MAX_RETRY_AFTER; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    with contextlib.suppress(TypeError, ValueError):
        when = email.utils.parsedate_to_datetime(value)
        return min(max(0.0, when.timestamp() - time.time()), MAX_RETRY_AFTER)
    return None


def _error_text(response: httpx2.Response) -> str:
    """The server's own message for a failed request: an Allen `msg`, else the start of the body."""
    body = response.content
    with contextlib.suppress(ValueError):
        parsed = response.json()
        if isinstance(parsed, dict) and "msg" in parsed:
            return str(parsed["msg"])
    return body[:200].decode("utf-8", "replace").strip() or "(no body)"
