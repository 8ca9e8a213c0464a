"""ASGI helpers shared by the lean image routes (Allen downloads, IIIF Image API).

The routes answer below FastAPI, straight on the ASGI interface: these send response starts and
bodies, read headers and query strings from the scope, and answer a planned `DownloadJob` the one way
both route families do (`send_image`): ETag and 304 before any pixel is read, HEAD without rendering,
a stored tile that answers as it is read from a local store on the event loop at once, small local
reads rendered on the event loop (after one turn of it) with a Content-Length (and kept in the worker's
`OutputCache` under their ETag), the rest through the `Renderer` (render threads, limits, streaming).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from urllib.parse import parse_qsl

from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from tierserve.api.conditional import none_match
from tierserve.api.state import AppState
from tierserve.core.encode import Sink
from tierserve.core.pyramid import is_small
from tierserve.db.repository import ImageRecord
from tierserve.downloads import DownloadJob, entity_tag, render_download, run_download, stored_answer
from tierserve.errors import InvalidRequest

Headers = list[tuple[bytes, bytes]]
#: An image never changes under its id (re-ingesting an id is skipped), so caches may keep answers a day
#: and revalidate them with If-None-Match against the ETag.
CACHE_CONTROL = "public, max-age=86400"
#: Answers rendered on the event loop from reads of at most this many pixels (tiles, small tiers,
#: thumbnails) are kept in the output cache; larger ones (regions) are rarely asked for twice and
#: would push many tiles out.
CACHED_READ_PIXELS = 512 * 512


def query_items(raw: bytes) -> list[tuple[str, str]]:
    """The query string's (name, value) pairs, blank values kept, as `parse_qsl` gives them (split on
    '&', empty parts dropped, '+' and %-escapes decoded as UTF-8); escapes of invalid UTF-8 are an error.
    Bytes beyond ASCII outside escapes come back as Latin-1 characters (as from parse_qsl). A query
    without "%" or "+" (what clients send for numbers and names) is split without decoding."""
    text = raw.decode("latin-1")
    if "%" not in text and "+" not in text:
        return [(name, value) for name, _, value in (part.partition("=") for part in text.split("&") if part)]
    try:
        return parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise InvalidRequest("the query string is not valid UTF-8") from None


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of request header `name` (lower case), or None."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def public_base(scope: Scope, public_url: str | None) -> str:
    """The URL this server is reached at: `public_url` (TIERSERVE_PUBLIC_URL), else the request's
    scheme, Host header and root path."""
    if public_url:
        return public_url
    host = header(scope, b"host")
    if host is None:
        server = scope.get("server") or ("localhost", None)
        host = server[0] if server[1] is None else f"{server[0]}:{server[1]}"
    return f"{scope.get('scheme', 'http')}://{host}{scope.get('root_path', '')}"


async def image_record(state: AppState, image_id: int, model: str | None = None) -> ImageRecord:
    """The image's record: a remembered one at once, others from the database on a worker thread.
    Raises `ImageNotFound`."""
    record = state.images.remembered(image_id, model)
    if record is None:
        record = await run_in_threadpool(state.images.get, image_id, model)
    return record


def encoded(headers: Mapping[str, str]) -> Headers:
    """`headers` as ASGI header pairs (names in lower case)."""
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]


async def send_head(send: Send, status: int, headers: Headers, more: bool = False) -> None:
    """The response start; with `more` False also the (empty) end of the body."""
    await send({"type": "http.response.start", "status": status, "headers": headers})
    if not more:
        await send({"type": "http.response.body", "body": b""})


async def send_body(send: Send, status: int, body: bytes, content_type: str, headers: Mapping[str, str]) -> None:
    """A whole response: `body` with its type, `headers` and its length."""
    await send_whole(send, status, [(b"content-type", content_type.encode("latin-1")), *encoded(headers)], body)


async def send_whole(send: Send, status: int, start: Headers, body: bytes) -> None:
    """A whole response: the `start` headers and Content-Length, then `body`."""
    await send_head(send, status, [*start, (b"content-length", str(len(body)).encode())], more=True)
    await send({"type": "http.response.body", "body": body})


async def send_image(
    state: AppState, job: DownloadJob, headers: Mapping[str, str], scope: Scope, receive: Receive, send: Send
) -> None:
    """Answer `job`: 304 when If-None-Match names its ETag, the headers alone for HEAD, else the image
    (found in the output cache; made on the event loop when `inline`, `answer_on_loop`; otherwise by
    the renderer). `headers` go on 200 answers."""
    etag = entity_tag(job, state.tiles)
    validators = {"ETag": etag, "Cache-Control": CACHE_CONTROL}
    if none_match(header(scope, b"if-none-match"), etag):
        await send_head(send, 304, encoded(validators))
        return
    named = {**headers, **validators}
    start = [(b"content-type", job.output.media_type.encode()), *encoded(named)]
    if scope["method"] == "HEAD":
        await send_head(send, 200, start)
        return
    body = state.outputs.peek(etag)  # before `inline`: a hit needs no look at the store
    if body is None and inline(state, job):
        body = await answer_on_loop(state, job, etag)
    else:
        state.outputs.count(etag, hit=body is not None)
    if body is not None:
        await send_whole(send, 200, start, body)
        return

    def render(sink: Sink) -> None:
        run_download(job, state.store, state.tiles, sink)

    response = await state.renderer.respond(render, job.output.media_type, named)
    await response(scope, receive, send)


async def answer_on_loop(state: AppState, job: DownloadJob, etag: str) -> bytes:
    """`job`'s answer made on the event loop (an `inline` job not in the output cache): the stored tile
    that answers it as it is, at once (`downloads.stored_answer`: one read of a local file; not kept
    in the output cache, reading it again costs less than the render another entry saves); else,
    after one turn of the loop, the answer an identical request rendered meanwhile or a render, kept
    in the output cache when its read is at most `CACHED_READ_PIXELS`."""
    if (stored := stored_answer(job, state.store, state.tiles)) is not None:
        return stored
    # Let the loop run what is queued first (with uvloop also the sockets ready: accepts, reads),
    # which a loop rendering back to back would otherwise reach only between batches of renders.
    await asyncio.sleep(0)
    body = state.outputs.peek(etag)
    state.outputs.count(etag, hit=body is not None)
    if body is None:
        chunks: list[bytes] = []
        render_download(job, state.store, state.tiles, collector(chunks))
        body = b"".join(chunks)
        if _read_pixels(job) <= CACHED_READ_PIXELS:
            state.outputs.put(etag, body)
    return body


def inline(state: AppState, job: DownloadJob) -> bool:
    """Whether `job` is small enough to render on the event loop: a read and output of at most
    `inline_render_pixels` (the setting) that `core.pyramid` reads into memory (never a libvips stream),
    from a local file (a store over the network never blocks the loop)."""
    plan = job.spec.plan
    return (
        job.output.encode_array is not None
        and is_small(plan.box)
        and is_small(plan.output)
        and _read_pixels(job) <= state.inline_render_pixels
        and state.store.open(job.file).local_path is not None
    )


def _read_pixels(job: DownloadJob) -> int:
    """The larger of the job's read box and output, in pixels."""
    plan = job.spec.plan
    return max(plan.box.width * plan.box.height, plan.output.width * plan.output.height)


def collector(chunks: list[bytes]) -> Sink:
    """A sink that appends every chunk to `chunks`."""

    def sink(data: bytes) -> bool:
        chunks.append(bytes(data))
        return True

    return sink
