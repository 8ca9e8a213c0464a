"""Request accounting: one pure-ASGI middleware around the whole app, in one pass over each request.

`RequestAccounting` sees the final status and every body byte of every answer (the lean image routes,
FastAPI's routes and the 500 of Starlette's error handler alike) and:

- gives the request an id, the client's `X-Request-ID` when it is sane (1-128 visible ASCII
  characters) or a new one, returned in the `X-Request-ID` header of the answer and set in
  `logs.REQUEST_ID` for the log lines written while answering;
- counts it in the metrics (`tierserve.metrics`) by route family (`route_family`: a fixed set of
  names, never the path) and status: requests, duration, body bytes (unless TIERSERVE_METRICS=false);
- writes the access log line (`logs.ACCESS_LOGGER`) when it ends (unless TIERSERVE_ACCESS_LOG=false).
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import secrets
import time
from collections.abc import Iterable
from urllib.parse import quote

from prometheus_client.metrics import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tierserve.api.routes.downloads import ENDPOINTS
from tierserve.logs import ACCESS_LOGGER, REQUEST_ID
from tierserve.metrics import REQUEST_SECONDS, REQUESTS, RESPONSE_BYTES

_SANE_ID = re.compile(rb"[\x21-\x7e]{1,128}")
_DOWNLOADS = frozenset(ENDPOINTS)
_EXACT = {
    "/healthz": "healthz",
    "/readyz": "readyz",
    "/metrics": "metrics",
    "/openapi.json": "openapi",
    "/docs": "openapi",
    "/docs/oauth2-redirect": "openapi",
    "/redoc": "openapi",
}
access_log = logging.getLogger(ACCESS_LOGGER)


def route_family(path: str) -> str:
    """The metrics label of `path`: an Allen download endpoint's name (section_image_download, ...),
    data_query, iiif_image, iiif_info, iiif_presentation, viewer, healthz, readyz, metrics, openapi or
    other."""
    if path.startswith("/api/v2/"):
        name = path[8:].partition("/")[0]
        if name in _DOWNLOADS:
            return name
        return "data_query" if name == "data" else "other"
    if path.startswith(("/iiif/3/", "/iiif/2/")):
        return "iiif_info" if path.endswith("/info.json") else "iiif_image"
    if path.startswith("/iiif/presentation/"):
        return "iiif_presentation"
    if path == "/viewer" or path.startswith("/viewer/"):
        return "viewer"
    return _EXACT.get(path, "other")


def request_id(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The request's `X-Request-ID` if it is 1-128 visible ASCII characters, else a new one (`_NewIds`)."""
    for name, value in headers:
        if name == b"x-request-id":
            if _SANE_ID.fullmatch(value):
                return value.decode("ascii")
            break
    return _new_ids.next()


class _NewIds:
    """New request ids: 32 hex digits, a random prefix of this process and its count of ids, so unique
    across processes and restarts for a tenth of the CPU of a uuid4 (a new prefix after a fork)."""

    def __init__(self) -> None:
        self.reseed()

    def reseed(self) -> None:
        self.prefix = secrets.token_hex(8)
        self.count = itertools.count()

    def next(self) -> str:
        return f"{self.prefix}{next(self.count):016x}"


_new_ids = _NewIds()
os.register_at_fork(after_in_child=_new_ids.reseed)


class RequestAccounting:
    """The accounting middleware (module docstring); `metrics` and `access_log` switch those parts on."""

    def __init__(self, app: ASGIApp, metrics: bool, access_log: bool) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = access_log
        #: (route, status) -> the metric children it counts in (labels() costs more than a dict lookup).
        self._children: dict[tuple[str, int], tuple[Counter, Histogram, Counter]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        rid = request_id(scope["headers"])
        # Each request runs in a task of its own, with a context of its own: the id stays set for the
        # lines written after the app returned (uvicorn's "Exception in ASGI application").
        REQUEST_ID.set(rid)
        id_header = (b"x-request-id", rid.encode("ascii"))
        status = 500  # if no answer starts, the server answers 500
        sent = 0

        async def send_counted(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), id_header]}
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_counted)
        finally:
            seconds = time.perf_counter() - started
            if self.metrics:
                self._count(route_family(scope["path"]), status, seconds, sent)
            if self.access_log and access_log.isEnabledFor(logging.INFO):
                _log_access(scope, status, seconds, sent, rid)

    def _count(self, route: str, status: int, seconds: float, sent: int) -> None:
        children = self._children.get((route, status))
        if children is None:
            children = (
                REQUESTS.labels(route, str(status)),
                REQUEST_SECONDS.labels(route),
                RESPONSE_BYTES.labels(route),
            )
            self._children[route, status] = children
        requests, duration, body_bytes = children
        requests.inc()
        duration.observe(seconds)
        if sent:
            body_bytes.inc(sent)


def _log_access(scope: Scope, status: int, seconds: float, sent: int, rid: str) -> None:
    """One access log line: the text of uvicorn's line plus bytes, milliseconds and request id; the
    fields as attributes of the record (`logs.ACCESS_FIELDS`, the JSON format writes them)."""
    client = scope.get("client")
    address = f"{client[0]}:{client[1]}" if client else "-"
    raw_path = scope.get("raw_path")
    path = raw_path.decode("latin-1") if raw_path else quote(scope["path"])
    if query := scope.get("query_string"):
        path = f"{path}?{query.decode('latin-1')}"
    method = scope["method"]
    duration_ms = round(seconds * 1000, 3)
    fields = {"method": method, "path": path, "status": status, "duration_ms": duration_ms, "bytes": sent}
    access_log.info(
        '%s - "%s %s HTTP/%s" %d %d B %.3f ms %s',
        address,
        method,
        path,
        scope.get("http_version", "1.1"),
        status,
        sent,
        duration_ms,
        rid,
        extra={**fields, "client": address, "request_id": rid},
    )
