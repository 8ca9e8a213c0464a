"""ASGI middleware of the app: a limit on the query string length, checked before routing, and HEAD."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tierserve.api.errors import error_body
from tierserve.metrics import count_refusal


class QueryLengthLimit:
    """Answers 414 (JSON body) to any request whose query string is longer than `max_length` bytes."""

    def __init__(self, app: ASGIApp, max_length: int) -> None:
        self.app = app
        self.max_length = max_length

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        length = len(scope.get("query_string", b"")) if scope["type"] == "http" else 0
        if length > self.max_length:
            message = f"query string of {length} bytes exceeds max_query_length={self.max_length}"
            count_refusal("max_query_length")
            await error_body(414, message)(scope, receive, send)
            return
        await self.app(scope, receive, send)


class HeadAsGet:
    """Answers HEAD as GET without the body (RFC 9110 section 9.3.2), headers and Content-Length included.

    For the routes behind it (data API, health, OpenAPI); the image routes answer HEAD themselves,
    without rendering.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, without_body)
