"""One table from domain exceptions to HTTP statuses; every error body is {"success": false, "msg": ...}."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from tierserve.errors import InvalidRequest, LimitExceeded, NotFound, StorageError, TierserveError, Unavailable
from tierserve.metrics import count_refusal

log = logging.getLogger(__name__)

#: Looked up along the exception's MRO, so a base class covers its subclasses.
STATUS_CODES: dict[type[TierserveError], int] = {
    InvalidRequest: 400,
    NotFound: 404,
    Unavailable: 503,
    StorageError: 500,
    TierserveError: 500,
}


def error_body(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"success": False, "msg": message}, status_code=status, headers=headers)


def status_for(exc: TierserveError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS_CODES:
            return STATUS_CODES[cls]
    return 500


def error_parts(exc: TierserveError) -> tuple[int, str, dict[str, str]]:
    """Status, message and extra headers (Retry-After for `Unavailable`) of a domain error, logged
    when it is the server's or the store's fault, counted in the metrics when a limit refused it."""
    status = status_for(exc)
    if isinstance(exc, Unavailable | LimitExceeded):
        count_refusal(exc.limit)
    if isinstance(exc, Unavailable):
        log.warning("%s", exc.message)
        return status, exc.message, {"Retry-After": str(exc.retry_after)}
    if status >= 500:
        log.error("%s: %s", type(exc).__name__, exc.message)
    return status, exc.message, {}


async def _domain_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, TierserveError)
    status, message, headers = error_parts(exc)
    return error_body(status, message, headers or None)


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return error_body(exc.status_code, str(exc.detail))


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    return error_body(400, problems)


async def _unexpected_error(_request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return error_body(500, "internal server error")


def add_exception_handlers(app: FastAPI) -> None:
    app.add_exception_handler(TierserveError, _domain_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected_error)
