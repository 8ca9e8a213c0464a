"""The RMA data API: ``/api/v2/data/query.{fmt}``, ``/api/v2/data/{Model}/query.{fmt}`` and
``/api/v2/data/{Model}/{id}.{fmt}``. Responses are the Allen envelope in JSON (default), XML or CSV;
failures are ``success: false`` envelopes in the requested format."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from tierserve.api.errors import status_for
from tierserve.api.state import AppState
from tierserve.db.rma import execute, project, tabulate
from tierserve.db.rma_schema import MODELS
from tierserve.errors import InvalidRequest, TierserveError
from tierserve.rma.formats import MEDIA_TYPES, Format, Page, format_error, format_page
from tierserve.rma.grammar import parse_options, parse_path, parse_query
from tierserve.rma.tree import Filter, Options, PathElement, Query, Stage, Value

router = APIRouter(tags=["data"])

_RESOURCE = re.compile(r"^(?P<name>[A-Za-z0-9_]+)(\.(?P<format>json|xml|csv))?$")
_FILENAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
_OPTION_PARAMS = {
    "num_rows": "num_rows",
    "numRows": "num_rows",
    "start_row": "start_row",
    "startRow": "start_row",
    "order": "order",
    "only": "only",
    "except": "except",
    "tabular": "tabular",
}
_IGNORED = {"count", "debug"}
_ACCEPTED = {"q", "criteria", "include", "id", "filename", *_OPTION_PARAMS, *_IGNORED}

_PARAMETERS = [
    {"name": name, "in": "query", "required": False, "schema": {"type": "string"}, "description": text}
    for name, text in (
        ("q", "RMA query: model::X,rma::criteria,...,rma::include,...,rma::options[...]"),
        ("criteria", "Synonym of q; on /data/{Model}/query a criteria path of that model."),
        ("include", "Associations to include, e.g. equalization,section_images."),
        ("id", "Restrict to this id."),
        ("num_rows", "Page size: an integer or 'all' (default 50). Also numRows."),
        ("start_row", "First row of the page (default 0). Also startRow."),
        ("order", "Fields to order by, e.g. 'sub_images.section_number$asc' or 'name desc'."),
        ("only", "Fields to return (table-qualified or not)."),
        ("except", "Fields to leave out."),
        ("tabular", "CSV columns: 'table.field as name',..."),
        ("filename", "Name in the Content-Disposition header."),
    )
]


def _split_resource(resource: str) -> tuple[str, Format]:
    match = _RESOURCE.fullmatch(resource)
    if not match:
        raise InvalidRequest(f"expected NAME.json, NAME.xml or NAME.csv, got {resource!r}")
    return match.group("name"), match.group("format") or "json"  # type: ignore[return-value]


def _single(request: Request) -> dict[str, str]:
    params: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        if name not in _ACCEPTED:
            raise InvalidRequest(f"unknown parameter {name!r}; accepted: {', '.join(sorted(_ACCEPTED))}")
        if name in params:
            raise InvalidRequest(f"parameter {name} is given more than once")
        params[name] = value
    if "q" in params and "criteria" in params:
        raise InvalidRequest("give q or criteria, not both")
    return params


def _url_options(params: dict[str, str], options: Options) -> Options:
    for name, option in _OPTION_PARAMS.items():
        if name in params:
            try:
                extra = parse_options(f"[{option}$eq{params[name]}]")
            except InvalidRequest as exc:
                raise InvalidRequest(f"parameter {name}: {exc.message}") from exc
            options = replace(
                options,
                num_rows=extra.num_rows if extra.num_rows is not None else options.num_rows,
                start_row=extra.start_row if extra.start_row is not None else options.start_row,
                order=options.order + extra.order,
                only=options.only + extra.only,
                exclude=options.exclude + extra.exclude,
                tabular=options.tabular + extra.tabular,
            )
    return options


def _id_filter(raw: str) -> PathElement:
    if not raw.isdigit() or len(raw) > 18:
        raise InvalidRequest(f"id must be a positive integer, got {raw!r}")
    return PathElement(None, (Filter("id", "eq", (Value(raw),), 0),), (), 0)


def _build_query(model: str | None, record_id: str | None, params: dict[str, str]) -> Query:
    """The query tree from the path and URL parameters (these extend the last stage)."""
    text = params.get("q", params.get("criteria"))
    if model is None:
        if not text:
            raise InvalidRequest("query needs a q (or criteria) parameter: model::Model,rma::criteria,...")
        query = parse_query(text)
    elif text and text.lstrip().startswith("model::"):
        query = parse_query(text)
    else:
        query = Query((Stage(model=model, position=0, criteria=parse_path(text) if text else ()),))
    stage = query.stages[-1]
    criteria = stage.criteria
    for raw in (record_id, params.get("id")):
        if raw is not None:
            criteria = (*criteria, _id_filter(raw))
    include = stage.include + (parse_path(params["include"]) if params.get("include") else ())
    last = replace(stage, criteria=criteria, include=include, options=_url_options(params, stage.options))
    return Query((*query.stages[:-1], last))


def _answer(state: AppState, request: Request, model: str | None, resource: str) -> Response:
    fmt: Format = "json"
    try:
        name, fmt = _split_resource(resource)
        params = _single(request)
        if model is None and name != "query":
            raise InvalidRequest(f"unknown data resource {resource!r}; use query.json, query.xml or query.csv")
        record_id = None if model is None or name == "query" else name
        query = _build_query(model, record_id, params)
        options = query.stages[-1].options
        with state.database.session() as session:
            result = execute(session, query)
        page = Page(
            element=result.model.element,
            collection=result.model.collection,
            fields=result.model.fields,
            records=project(result, options),
            start_row=result.start_row,
            total_rows=result.total_rows,
            table=tabulate(result, options),
        )
        body, status = format_page(page, fmt), 200
    except TierserveError as exc:
        body, status = format_error(exc.message, fmt), status_for(exc)
    filename = request.query_params.get("filename")
    if not filename or not _FILENAME.fullmatch(filename):
        filename = f"query.{fmt}"
    headers = {"Content-Disposition": f"inline; filename={filename}", "Cache-Control": "no-cache"}
    return Response(body, status_code=status, media_type=MEDIA_TYPES[fmt], headers=headers)


@router.get(
    "/api/v2/data/{resource}",
    operation_id="data_query",
    summary="RMA query: query.json, query.xml or query.csv with q=model::...",
    openapi_extra={"parameters": _PARAMETERS},
)
def data_query(
    request: Request, resource: Annotated[str, Path(description="query.json, query.xml or query.csv")]
) -> Response:
    return _answer(request.app.state.tierserve, request, None, resource)


@router.get(
    "/api/v2/data/{model}/{resource}",
    operation_id="data_model",
    summary="Records of one model: {Model}/query.{fmt} or {Model}/{id}.{fmt}",
    openapi_extra={"parameters": _PARAMETERS},
)
def data_model(
    request: Request,
    model: Annotated[str, Path(description=f"One of {', '.join(MODELS)}")],
    resource: Annotated[str, Path(description="query.{json,xml,csv} or {id}.{json,xml,csv}")],
) -> Response:
    return _answer(request.app.state.tierserve, request, model, resource)
