"""The Allen image download endpoints as a lean ASGI route: all four share one handler and options.

`ImageDownloads` sits in front of the FastAPI router and answers `/api/v2/<endpoint>/<id>` itself:
parameters are parsed from the one table in `api.params`, the image record comes from the worker's
cache (the database on a thread only when it is not remembered), and a render whose read is tiny
(`INLINE_READ_PIXELS`, from a local store) runs on the event loop and leaves with a Content-Length,
without the hop to a render thread; larger renders go through the `Renderer` (render threads,
limits, streaming). HEAD answers the headers GET would send (no Content-Length: it is known only
after rendering) without rendering. Every other path falls through to FastAPI. The OpenAPI
description of these routes is built from the same tables (`openapi_paths`).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from tierserve.api.conditional import none_match
from tierserve.api.errors import allen_error
from tierserve.api.params import openapi_parameters, parse_options, split_image_id
from tierserve.api.state import AppState
from tierserve.core.encode import Sink
from tierserve.downloads import DownloadJob, entity_tag, plan_download, run_download
from tierserve.errors import InvalidRequest, TierserveError

#: path segment -> (record model the id must be, or None for any SubImage; OpenAPI summary)
ENDPOINTS: dict[str, tuple[str | None, str]] = {
    "section_image_download": ("SectionImage", "A SectionImage, its expression mask or another layer."),
    "atlas_image_download": ("AtlasImage", "An AtlasImage plate, or its annotation with annotation=true."),
    "projection_image_download": ("SectionImage", "A connectivity SectionImage or its projection layer."),
    "image_download": (None, "Any SubImage (SectionImage or AtlasImage) by id."),
}
PREFIX = "/api/v2/"
METHODS = ("GET", "HEAD")
#: Reads of at most this many level pixels (about 4 stored tiles) from a local store are rendered on
#: the event loop: about 1-2 ms of CPU, less than the hop to a render thread and back costs.
INLINE_READ_PIXELS = 512 * 512
#: An image never changes under its id (re-ingesting an id is skipped), so caches may keep answers a day
#: and revalidate them with If-None-Match against the ETag.
CACHE_CONTROL = "public, max-age=86400"
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

Headers = list[tuple[bytes, bytes]]


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
            status, message, headers = allen_error(exc)
            await _send_json(send, status, {"success": False, "msg": message}, headers)

    async def _answer(self, route: tuple[str | None, str], scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in METHODS:
            await _send_json(send, 405, {"success": False, "msg": "Method Not Allowed"}, {"Allow": ", ".join(METHODS)})
            return
        job = await self._plan(route, scope)
        etag = entity_tag(job)
        validators: Headers = [(b"etag", etag.encode()), (b"cache-control", CACHE_CONTROL.encode())]
        if none_match(_header(scope, b"if-none-match"), etag):
            await _send_head(send, 304, validators)
            return
        disposition = f"inline; filename={job.image_id}.{job.output.extension}"
        headers = [
            (b"content-type", job.output.media_type.encode()),
            (b"content-disposition", disposition.encode()),
            *validators,
        ]
        if scope["method"] == "HEAD":
            await _send_head(send, 200, headers)
        elif self._inline(job):
            chunks: list[bytes] = []
            run_download(job, self.state.store, self.state.tiles, _collector(chunks))
            body = b"".join(chunks)
            await _send_head(send, 200, [*headers, (b"content-length", str(len(body)).encode())], more=True)
            await send({"type": "http.response.body", "body": body})
        else:
            state = self.state

            def render(sink: Sink) -> None:
                run_download(job, state.store, state.tiles, sink)

            named = {"Content-Disposition": disposition, "ETag": etag, "Cache-Control": CACHE_CONTROL}
            response = await state.renderer.respond(render, job.output.media_type, named)
            await response(scope, receive, send)

    async def _plan(self, route: tuple[str | None, str], scope: Scope) -> DownloadJob:
        """Parse the request and validate it against the image record (remembered ones at once, others
        from the database on a worker thread)."""
        model, raw_id = route
        image_id, extra = split_image_id(raw_id)
        options = parse_options([*extra, *_query_items(scope["query_string"])])
        images = self.state.images
        record = images.remembered(image_id, model)
        if record is None:
            record = await run_in_threadpool(images.get, image_id, model)
        settings = self.state.settings
        return plan_download(record, options, settings.max_output_pixels, settings.jpeg_chroma)

    def _inline(self, job: DownloadJob) -> bool:
        """Whether `job` is tiny enough to render on the event loop: an in-memory read of at most
        `INLINE_READ_PIXELS` level pixels from a local file (a store over the network never blocks the loop)."""
        box = job.spec.plan.box
        return (
            job.output.encode_array is not None
            and box.width * box.height <= INLINE_READ_PIXELS
            and self.state.store.open(job.file).local_path is not None
        )


def _query_items(raw: bytes) -> list[tuple[str, str]]:
    """The query string's (name, value) pairs, blank values kept; undecodable bytes are an error."""
    try:
        return parse_qsl(raw.decode("latin-1"), keep_blank_values=True, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise InvalidRequest("the query string is not valid UTF-8") from None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _collector(chunks: list[bytes]) -> Sink:
    def sink(data: bytes) -> bool:
        chunks.append(bytes(data))
        return True

    return sink


async def _send_head(send: Send, status: int, headers: Headers, more: bool = False) -> None:
    """The response start; with `more` False also the (empty) end of the body."""
    await send({"type": "http.response.start", "status": status, "headers": headers})
    if not more:
        await send({"type": "http.response.body", "body": b""})


async def _send_json(send: Send, status: int, content: dict[str, object], headers: dict[str, str]) -> None:
    body = json.dumps(content).encode()
    start = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *((name.lower().encode(), value.encode()) for name, value in headers.items()),
    ]
    await _send_head(send, status, start, more=True)
    await send({"type": "http.response.body", "body": body})


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
