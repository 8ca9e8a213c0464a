"""The composition root: settings -> state -> routers, error table, request accounting, and the
operations routes: liveness (`/healthz`), readiness (`/readyz`) and metrics (`/metrics`)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict

import pyvips
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp

from tierserve import __version__, metrics
from tierserve.api import balance
from tierserve.api.accounting import RequestAccounting
from tierserve.api.errors import add_exception_handlers
from tierserve.api.middleware import HeadAsGet, QueryLengthLimit
from tierserve.api.routes import data, downloads, iiif_image, iiif_presentation, viewer
from tierserve.api.state import AppState
from tierserve.core import area_kernel
from tierserve.settings import Settings

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    """A configured app; settings default to the environment (TIERSERVE_*)."""
    settings = settings or Settings()
    pyvips.cache_set_max(0)  # identical requests must not be answered from libvips' operation cache
    state = AppState.from_settings(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if not area_kernel.available():
            log.warning("the C area average (core/area.c) was not built: NumPy resamples, at about twice the CPU")
        yield
        state.close()
        metrics.worker_stopped()
        balance.leave()

    app = FastAPI(
        title="tierserve",
        version=__version__,
        summary="Allen Brain Atlas compatible image download service",
        lifespan=lifespan,
    )
    app.state.tierserve = state
    add_exception_handlers(app)
    # Outermost last: CORS, the query length limit, the lean image routes (IIIF, Allen), HEAD for the rest, FastAPI.
    app.add_middleware(HeadAsGet)
    app.add_middleware(downloads.ImageDownloads, state=state)
    app.add_middleware(iiif_image.IIIFImage, state=state)
    app.add_middleware(QueryLengthLimit, max_length=settings.max_query_length)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=list(downloads.METHODS),
        allow_headers=["*"],
        max_age=3600,
    )
    build_stack = app.build_middleware_stack

    def accounted_stack() -> ASGIApp:
        """Starlette's stack inside the request accounting, which so sees every final status, the 500
        of Starlette's error handler included."""
        return RequestAccounting(build_stack(), settings.metrics, settings.access_log)

    app.build_middleware_stack = accounted_stack  # type: ignore[method-assign]
    app.include_router(data.router)
    app.include_router(iiif_presentation.router)
    viewer.mount(app)

    def openapi() -> dict[str, object]:
        """FastAPI's description of its routes, with the lean image routes added."""
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
            schema["paths"] = {**downloads.openapi_paths(), **schema["paths"]}
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.get("/healthz", tags=["operations"], operation_id="healthz")
    async def healthz() -> dict[str, object]:
        """Liveness, versions of the native libraries, which area average resamples ("compiled": the C
        kernel built at install; "numpy" where it was not), and this worker's output cache (hits,
        misses, entries, bytes)."""
        cache = state.outputs.stats
        return {
            "success": True,
            "version": __version__,
            "libvips": ".".join(str(pyvips.version(i)) for i in range(3)),
            "area_average": "compiled" if area_kernel.available() else "numpy",
            "output_cache": {**asdict(cache), "hit_rate": round(cache.hit_rate, 4)},
        }

    @app.get("/readyz", tags=["operations"], operation_id="readyz")
    async def readyz() -> JSONResponse:
        """Readiness: 200 when the database and the store answer, else 503 naming what failed (probed at
        most every `readiness_cache_seconds`)."""
        checks = await state.readiness.checks()
        failed = [f"{name}: {check.detail}" for name, check in checks.items() if not check.ok]
        content: dict[str, object] = {"success": not failed, **{name: check.detail for name, check in checks.items()}}
        if failed:
            content["msg"] = "not ready: " + "; ".join(failed)
        return JSONResponse(content, status_code=503 if failed else 200)

    if settings.metrics:

        @app.get("/metrics", tags=["operations"], operation_id="metrics", response_class=Response)
        def metrics_text() -> Response:
            """Prometheus metrics of every worker of this server, in the text format."""
            return Response(metrics.exposition(), media_type=metrics.CONTENT_TYPE)

    return app
