"""ASGI middleware of the app: a limit on the query string length, checked before routing."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from tierserve.api.errors import error_body


class QueryLengthLimit:
    """Answers 414 (JSON body) to any request whose query string is longer than `max_length` bytes."""

    def __init__(self, app: ASGIApp, max_length: int) -> None:
        self.app = app
        self.max_length = max_length

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        length = len(scope.get("query_string", b"")) if scope["type"] == "http" else 0
        if length > self.max_length:
            message = f"query string of {length} bytes exceeds max_query_length={self.max_length}"
            await error_body(414, message)(scope, receive, send)
            return
        await self.app(scope, receive, send)
