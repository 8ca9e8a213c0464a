"""The Allen image download endpoints; all four share one handler and accept the same options."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from tierserve.api.conditional import none_match
from tierserve.api.params import openapi_parameters, parse_options, split_image_id
from tierserve.api.state import AppState
from tierserve.core.encode import Sink
from tierserve.downloads import DownloadJob, DownloadOptions, entity_tag, plan_download, run_download

router = APIRouter(tags=["image download"])

ENDPOINTS: tuple[tuple[str, str | None, str], ...] = (
    ("section_image_download", "SectionImage", "A SectionImage, its expression mask or another layer."),
    ("atlas_image_download", "AtlasImage", "An AtlasImage plate, or its annotation with annotation=true."),
    ("projection_image_download", "SectionImage", "A connectivity SectionImage or its projection layer."),
    ("image_download", None, "Any SubImage (SectionImage or AtlasImage) by id."),
)

#: An image never changes under its id (re-ingesting an id is skipped), so caches may keep answers a day
#: and revalidate them with If-None-Match against the ETag.
CACHE_CONTROL = "public, max-age=86400"
_ID_DESCRIPTION = "Image id (decimal digits). The seed's form `ID&name=value...` is accepted too."
_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {
        "content": {"image/jpeg": {}, "image/png": {}, "image/tiff": {}},
        "description": "An 8-bit RGB JPEG (PNG or TIFF with format=png|tiff).",
    },
    304: {"description": "If-None-Match names the current ETag: the cached image is still valid."},
    400: {"description": "Malformed or out-of-range parameter: {success: false, msg}."},
    404: {"description": "Unknown id or missing layer: {success: false, msg}."},
}


async def _plan(state: AppState, model: str | None, image_id: int, options: DownloadOptions) -> DownloadJob:
    """Validate the request against the image record: remembered ones at once, others from the
    database on a worker thread."""
    record = state.images.remembered(image_id, model)
    if record is None:
        record = await run_in_threadpool(state.images.get, image_id, model)
    return plan_download(record, options, state.settings.max_output_pixels, state.settings.jpeg_chroma)


def _register(path: str, model: str | None, summary: str) -> None:
    async def download(request: Request, image_id: Annotated[str, Path(description=_ID_DESCRIPTION)]) -> Response:
        identifier, extra = split_image_id(image_id)
        options = parse_options([*extra, *request.query_params.multi_items()])
        state: AppState = request.app.state.tierserve
        job = await _plan(state, model, identifier, options)

        validators = {"ETag": entity_tag(job), "Cache-Control": CACHE_CONTROL}
        if none_match(request.headers.get("if-none-match"), validators["ETag"]):
            return Response(status_code=304, headers=validators)

        def render(sink: Sink) -> None:
            run_download(job, state.store, state.tiles, sink)

        headers = {"Content-Disposition": f"inline; filename={job.image_id}.{job.output.extension}", **validators}
        return await state.renderer.respond(render, job.output.media_type, headers)

    router.add_api_route(
        f"/api/v2/{path}/{{image_id}}",
        download,
        methods=["GET"],
        operation_id=path,
        summary=summary,
        response_class=Response,
        responses=_RESPONSES,
        openapi_extra={"parameters": openapi_parameters()},
    )


for _path, _model, _summary in ENDPOINTS:
    _register(_path, _model, _summary)
