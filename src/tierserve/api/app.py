"""The composition root: settings -> state -> routers, error table, health check."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pyvips
from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from tierserve import __version__
from tierserve.api.errors import add_exception_handlers
from tierserve.api.middleware import QueryLengthLimit
from tierserve.api.routes import data, downloads
from tierserve.api.state import AppState
from tierserve.settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    """A configured app; settings default to the environment (TIERSERVE_*)."""
    settings = settings or Settings()
    pyvips.cache_set_max(0)  # identical requests must not be answered from libvips' operation cache
    state = AppState.from_settings(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        state.close()

    app = FastAPI(
        title="tierserve",
        version=__version__,
        summary="Allen Brain Atlas compatible image download service",
        lifespan=lifespan,
    )
    app.state.tierserve = state
    add_exception_handlers(app)
    app.add_middleware(QueryLengthLimit, max_length=settings.max_query_length)
    app.add_middleware(
        CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET"], allow_headers=["*"], max_age=3600
    )
    app.include_router(downloads.router)
    app.include_router(data.router)

    @app.get("/healthz", tags=["operations"], operation_id="healthz")
    def healthz() -> dict[str, object]:
        """Liveness and versions of the native libraries."""
        return {
            "success": True,
            "version": __version__,
            "libvips": ".".join(str(pyvips.version(i)) for i in range(3)),
        }

    return app
