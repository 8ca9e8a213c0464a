"""IIIF Presentation API 3.0: ``/iiif/presentation/3/collection`` and ``/iiif/presentation/3/manifest/{id}``.

The documents are built by `tierserve.iiif.presentation` from the database records. Their URLs start
at TIERSERVE_PUBLIC_URL, or else at the request's scheme, host and root path. JSON-LD
(``application/ld+json;profile=...``) is answered when Accept asks for it, plain JSON otherwise
(Presentation 3.0, section 6.1). The ETag hashes what the document is made from (the records, the
base URL, the media type and the tierserve version), so a 304 builds nothing. Errors are this router's
``{"error": message}`` bodies (statuses from the one table in `tierserve.api.errors`), never the
Allen ``success: false`` envelope; anything else under ``/iiif/presentation/`` is such a 404.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Path, Request
from sqlalchemy.orm import Session
from starlette.responses import JSONResponse, Response

from tierserve import __version__
from tierserve.api.conditional import none_match
from tierserve.api.errors import status_for
from tierserve.api.state import AppState
from tierserve.db.repository import DataSetRecord, list_data_sets, load_data_set
from tierserve.errors import NotFound, TierserveError
from tierserve.iiif import presentation
from tierserve.iiif.presentation import Links
from tierserve.settings import Settings

log = logging.getLogger(__name__)

PREFIX = "/iiif/presentation"
JSON = "application/json"
JSON_LD = f'application/ld+json;profile="{presentation.CONTEXT}"'
#: Manifests change when images are ingested into their data set: caches revalidate with the ETag.
CACHE_CONTROL = "no-cache"
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {JSON: {}, "application/ld+json": {}},
        "description": "The document; application/ld+json with the Presentation 3 profile when Accept asks for it.",
    },
    304: {"description": "If-None-Match names the current ETag."},
}

R = TypeVar("R")

router = APIRouter(tags=["iiif"])


def public_base(request: Request, settings: Settings) -> str:
    """The base of every URL in the documents: TIERSERVE_PUBLIC_URL, or the request's scheme, host and root path."""
    return settings.public_url or str(request.base_url).rstrip("/")


def wants_json_ld(accept: str | None) -> bool:
    """Whether an Accept header asks for application/ld+json (with a non-zero quality)."""
    for item in (accept or "").split(","):
        media, *params = (part.strip() for part in item.split(";"))
        if media.lower() != "application/ld+json":
            continue
        quality = next((p.partition("=")[2] for p in params if p.lower().startswith("q=")), "1")
        try:
            if float(quality) > 0:
                return True
        except ValueError:
            continue
    return False


@router.get(
    f"{PREFIX}/3/collection",
    operation_id="iiif_presentation_collection",
    summary="IIIF Presentation 3.0 Collection of every data set's manifest",
    responses=_RESPONSES,
)
def collection(request: Request) -> Response:
    return _document(request, list_data_sets, presentation.collection)


@router.get(
    f"{PREFIX}/3/manifest/{{data_set_id}}",
    operation_id="iiif_presentation_manifest",
    summary="IIIF Presentation 3.0 Manifest of a SectionDataSet or AtlasDataSet",
    responses={
        **_RESPONSES,
        400: {"description": 'The id is not a positive integer: {"error": message}.'},
        404: {"description": 'No data set with that id, or it has no image: {"error": message}.'},
    },
)
def manifest(
    request: Request, data_set_id: Annotated[str, Path(description="SectionDataSet or AtlasDataSet id")]
) -> Response:
    def load(session: Session) -> DataSetRecord:
        number = presentation.parse_data_set_id(data_set_id)
        record = load_data_set(session, number)
        if record is None:
            raise NotFound(f"no SectionDataSet or AtlasDataSet with id {number}")
        if not record.sections:
            raise NotFound(f"data set {number} has no images")  # a manifest needs a canvas
        return record

    return _document(request, load, presentation.manifest)


@router.get(f"{PREFIX}/{{rest:path}}", include_in_schema=False)
def unknown(rest: str) -> Response:
    return _error(404, f"no IIIF Presentation resource /iiif/presentation/{rest[:100]}")


def _document(request: Request, load: Callable[[Session], R], build: Callable[[R, Links], Any]) -> Response:
    """The document built from the loaded records, as JSON or JSON-LD with its ETag; a 304; or this
    router's error body."""
    state: AppState = request.app.state.tierserve
    links = Links(public_base(request, state.settings))
    media_type = JSON_LD if wants_json_ld(request.headers.get("accept")) else JSON
    try:
        with state.database.session() as session:
            records = load(session)
        planned = (__version__, media_type, links, records)
        tag = '"' + hashlib.blake2b(repr(planned).encode(), digest_size=16).hexdigest() + '"'
        headers = {"ETag": tag, "Cache-Control": CACHE_CONTROL, "Vary": "Accept"}
        if none_match(request.headers.get("if-none-match"), tag):
            return Response(status_code=304, headers=headers)
        body = presentation.dumps(build(records, links))
    except TierserveError as exc:
        status = status_for(exc)
        if status >= 500:
            log.error("%s: %s", type(exc).__name__, exc.message)
        return _error(status, exc.message)
    except Exception:
        log.exception("IIIF Presentation document %s failed", request.url.path)
        return _error(500, "internal server error")
    return Response(body, media_type=media_type, headers=headers)


def _error(status: int, message: str) -> Response:
    return JSONResponse({"error": message}, status_code=status, headers={"Cache-Control": "no-store"})
