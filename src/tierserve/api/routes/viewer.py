"""The web viewer at ``/viewer/``: the static files of `tierserve.viewer`, and ``/viewer`` redirected there.

The files are served by Starlette's `StaticFiles` (ETag, Last-Modified, 304, path-traversal guard)
with ``Cache-Control: no-cache``: they change with the tierserve version, so browsers revalidate them
instead of guessing a freshness. ``/viewer`` answers a relative redirect (``viewer/``), so the page
also works under a proxy's root path; the page itself finds the API relative to its own URL.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from tierserve.viewer import STATIC

PREFIX = "/viewer"
CACHE_CONTROL = "no-cache"


class ViewerFiles(StaticFiles):
    """`StaticFiles` whose answers carry ``Cache-Control: no-cache``."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.setdefault("Cache-Control", CACHE_CONTROL)
        return response


def mount(app: FastAPI) -> None:
    """Serve the viewer at ``/viewer/`` (``index.html`` for the directory) and redirect ``/viewer``."""

    @app.api_route(PREFIX, methods=["GET", "HEAD"], include_in_schema=False)
    def viewer_root(_request: Request) -> Response:
        return RedirectResponse("viewer/", status_code=308)

    app.mount(PREFIX, ViewerFiles(directory=STATIC, html=True), name="viewer")
