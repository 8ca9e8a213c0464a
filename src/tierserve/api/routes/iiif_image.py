"""The IIIF Image API, 3.0 at ``/iiif/3/`` and 2.1 at ``/iiif/2/``, as a lean ASGI route (docs/iiif.md).

`IIIFImage` sits in front of the FastAPI router, beside the Allen downloads, and answers every path
under the two prefixes:

- ``{identifier}`` (and ``{identifier}/``): 303 to ``{identifier}/info.json`` (baseUriRedirect);
- ``{identifier}/info.json``: the image information, JSON-LD or JSON by the Accept header as the
  version's specification says, with an ETag;
- ``{identifier}/{region}/{size}/{rotation}/{quality}.{format}``: the image, planned by
  `tierserve.iiif.image_service` and answered as the Allen images are (`api.asgi.send_image`: ETag and
  304, HEAD without rendering, tiny reads on the event loop, the rest on render threads), with
  canonical and profile ``Link`` headers. The display filters ``range``, ``contrast``, ``rgb`` and
  ``colormap`` are accepted as query parameters with the Allen meaning (an extension).

Errors are this router's own: the status from the one table (`api.errors`: 400 bad request, 404
unknown identifier or layer, 503 with Retry-After for limits and the store), the message as plain
text; 405 for methods other than GET and HEAD. CORS headers come from the app's CORS middleware.
"""

from __future__ import annotations

import hashlib
import json
import logging
from urllib.parse import quote

from starlette.types import ASGIApp, Receive, Scope, Send

from tierserve import __version__
from tierserve.api.asgi import (
    CACHE_CONTROL,
    encoded,
    header,
    image_record,
    public_base,
    query_items,
    send_body,
    send_head,
    send_image,
)
from tierserve.api.conditional import none_match
from tierserve.api.errors import error_parts
from tierserve.api.params import parse_display_options
from tierserve.api.routes.iiif_presentation import wants_json_ld
from tierserve.api.state import AppState
from tierserve.core.encode import Encoding
from tierserve.errors import NotFound, TierserveError
from tierserve.iiif.image_request import Version, parse_image_request
from tierserve.iiif.image_service import (
    CONTEXTS,
    PROFILES,
    Identifier,
    check_layer,
    image_info,
    limits_for,
    parse_identifier,
    plan_image,
)

log = logging.getLogger(__name__)

PREFIXES: dict[str, Version] = {"/iiif/3/": 3, "/iiif/2/": 2}
METHODS = ("GET", "HEAD")
_TEXT = "text/plain; charset=utf-8"


class IIIFImage:
    """ASGI middleware answering the IIIF Image API paths of `state`; other requests go to `app`."""

    def __init__(self, app: ASGIApp, state: AppState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        version, prefix = _version(scope["path"]) if scope["type"] == "http" else (None, "")
        if version is None:
            await self.app(scope, receive, send)
            return
        try:
            if scope["method"] not in METHODS:
                await send_body(send, 405, b"Method Not Allowed", _TEXT, {"Allow": ", ".join(METHODS)})
                return
            await self._answer(version, prefix, scope["path"][len(prefix) :].split("/"), scope, receive, send)
        except TierserveError as exc:
            status, message, headers = error_parts(exc)
            await send_body(send, status, message.encode(), _TEXT, headers)
        except Exception:
            log.exception("IIIF request %s failed", scope["path"][:200])
            await send_body(send, 500, b"internal server error", _TEXT, {})

    async def _answer(
        self, version: Version, prefix: str, parts: list[str], scope: Scope, receive: Receive, send: Send
    ) -> None:
        identifier = parse_identifier(parts[0])
        service = f"{public_base(scope, self.state.settings.public_url)}{prefix}{quote(identifier.text)}"
        if parts[1:] in ([], [""]):
            await send_head(send, 303, encoded({"Location": f"{service}/info.json"}))
        elif parts[1:] == ["info.json"]:
            await self._info(version, identifier, service, scope, send)
        elif len(parts) == 5:
            await self._image(version, identifier, service, parts[1:], scope, receive, send)
        else:
            raise NotFound(f"no IIIF Image API resource {scope['path'][:200]}")

    async def _info(self, version: Version, identifier: Identifier, service: str, scope: Scope, send: Send) -> None:
        record = await image_record(self.state, identifier.image_id)
        check_layer(record, identifier)
        media_type = _info_media_type(version, header(scope, b"accept"))
        limits = limits_for(self.state.settings.max_output_pixels)
        body = json.dumps(image_info(version, service, record, limits), indent=2).encode()
        etag = '"' + hashlib.blake2b(repr((__version__, media_type, body)).encode(), digest_size=16).hexdigest() + '"'
        validators = {"ETag": etag, "Cache-Control": CACHE_CONTROL, "Vary": "Accept"}
        if none_match(header(scope, b"if-none-match"), etag):
            await send_head(send, 304, encoded(validators))
        elif scope["method"] == "HEAD":
            start = [(b"content-type", media_type.encode()), (b"content-length", str(len(body)).encode())]
            await send_head(send, 200, [*start, *encoded(validators)])
        else:
            await send_body(send, 200, body, media_type, validators)

    async def _image(
        self,
        version: Version,
        identifier: Identifier,
        service: str,
        parameters: list[str],
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        request = parse_image_request(version, *parameters)
        display = parse_display_options(query_items(scope["query_string"]))
        record = await image_record(self.state, identifier.image_id)
        settings = self.state.settings
        encoding = Encoding(settings.iiif_jpeg_quality, settings.jpeg_chroma)
        planned = plan_image(record, identifier, request, display, limits_for(settings.max_output_pixels), encoding)
        query = scope["query_string"].decode("latin-1")
        canonical = f"{service}/{planned.canonical}" + (f"?{query}" if query else "")
        link = f'<{canonical}>;rel="canonical",<{PROFILES[version]}>;rel="profile"'
        await send_image(self.state, planned.job, {"Link": link}, scope, receive, send)


def _version(path: str) -> tuple[Version | None, str]:
    for prefix, version in PREFIXES.items():
        if path.startswith(prefix):
            return version, prefix
    return None, ""


def _info_media_type(version: Version, accept: str | None) -> str:
    """JSON-LD with the context as profile when Accept asks for it; in 3.0 also without an Accept header
    or one that does not name application/json (3.0 section 5.1); plain JSON otherwise (2.1 section 5)."""
    json_ld = f'application/ld+json;profile="{CONTEXTS[version]}"'
    if wants_json_ld(accept):
        return json_ld
    if version == 3 and "application/json" not in (accept or "").lower():
        return json_ld
    return "application/json"
