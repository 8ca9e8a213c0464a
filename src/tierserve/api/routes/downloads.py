"""The Allen image download endpoints as a lean ASGI route: all four share one handler and options.

`ImageDownloads` sits in front of the FastAPI router and answers `/api/v2/<endpoint>/<id>` itself:
parameters are parsed from the one table in `api.params`, the image record comes from the worker's
cache (the database on a thread only when it is not remembered), and the job is answered as
`api.asgi.send_image` answers every image: a tiny read from a local store runs on the event loop and
leaves with a Content-Length, without the hop to a render thread; larger renders go through the
`Renderer` (render threads, limits, streaming). HEAD answers the headers GET would send (no
Content-Length: it is known only after rendering) without rendering. Every other path falls through
to FastAPI. The OpenAPI description of these routes is built from the same tables (`openapi_paths`).
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from tierserve.api.asgi import image_record, query_items, send_body, send_image
from tierserve.api.errors import error_parts
from tierserve.api.params import openapi_parameters, parse_options, split_image_id
from tierserve.api.state import AppState
from tierserve.downloads import DownloadJob, plan_download
from tierserve.errors import TierserveError

#: path segment -> (record model the id must be, or None for any SubImage; OpenAPI summary)
ENDPOINTS: dict[str, tuple[str | None, str]] = {
    "section_image_download": ("SectionImage", "A SectionImage, its expression mask or another layer."),
    "atlas_image_download": ("AtlasImage", "An AtlasImage plate, or its annotation with annotation=true."),
    "projection_image_download": ("SectionImage", "A connectivity SectionImage or its projection layer."),
    "image_download": (None, "Any SubImage (SectionImage or AtlasImage) by id."),
}
PREFIX = "/api/v2/"
METHODS = ("GET", "HEAD")
_ID_DESCRIPTION = "Image id (decimal digits). The seed's form `ID&name=value...` is accepted too."
_RESPONSES: dict[str, dict[str, object]] = {
    "200": {
        "content": {"image/jpeg": {}, "image/png": {}, "image/tiff": {}},
        "description": "An 8-bit RGB JPEG (PNG or TIFF with format=png|tiff).",
    },
    "304": {"description": "If-None-Match names the current ETag: the cached image is still valid."},
    "400": {"description": "Malformed or out-of-range parameter: {success: false, msg}."},
    "404": {"description": "Unknown id or missing layer: {success: false, msg}."},
    "503": {"description": "A limit or the store refused the render for now: {success: false, msg}, Retry-After."},
}


def match(path: str) -> tuple[str | None, str] | None:
    """(model, raw id segment) when `path` is `/api/v2/<endpoint>/<id>`, else None."""
    if not path.startswith(PREFIX):
        return None
    endpoint, slash, raw_id = path[len(PREFIX) :].partition("/")
    route = ENDPOINTS.get(endpoint)
    if route is None or not slash or not raw_id or "/" in raw_id:
        return None
    return route[0], raw_id


class ImageDownloads:
    """ASGI middleware answering the image download routes of `state`; other requests go to `app`."""

    def __init__(self, app: ASGIApp, state: AppState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = match(scope["path"]) if scope["type"] == "http" else None
        if route is None:
            await self.app(scope, receive, send)
            return
        try:
            await self._answer(route, scope, receive, send)
        except TierserveError as exc:
            status, message, headers = error_parts(exc)
            await _send_json(send, status, {"success": False, "msg": message}, headers)

    async def _answer(self, route: tuple[str | None, str], scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in METHODS:
            await _send_json(send, 405, {"success": False, "msg": "Method Not Allowed"}, {"Allow": ", ".join(METHODS)})
            return
        job = await self._plan(route, scope)
        disposition = f"inline; filename={job.image_id}.{job.output.extension}"
        await send_image(self.state, job, {"Content-Disposition": disposition}, scope, receive, send)

    async def _plan(self, route: tuple[str | None, str], scope: Scope) -> DownloadJob:
        """Parse the request and validate it against the image record (remembered ones at once, others
        from the database on a worker thread)."""
        model, raw_id = route
        image_id, extra = split_image_id(raw_id)
        options = parse_options([*extra, *query_items(scope["query_string"])])
        record = await image_record(self.state, image_id, model)
        settings = self.state.settings
        return plan_download(record, options, settings.max_output_pixels, settings.jpeg_chroma)


async def _send_json(send: Send, status: int, content: dict[str, object], headers: dict[str, str]) -> None:
    await send_body(send, status, json.dumps(content).encode(), "application/json", headers)


def openapi_paths() -> dict[str, dict[str, Any]]:
    """The OpenAPI path items of the download routes, from `ENDPOINTS` and the parameter table."""
    id_parameter = {
        "name": "image_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": _ID_DESCRIPTION,
    }
    return {
        f"{PREFIX}{endpoint}/{{image_id}}": {
            "get": {
                "tags": ["image download"],
                "summary": summary,
                "operationId": endpoint,
                "parameters": [id_parameter, *openapi_parameters()],
                "responses": _RESPONSES,
            }
        }
        for endpoint, (_model, summary) in ENDPOINTS.items()
    }
