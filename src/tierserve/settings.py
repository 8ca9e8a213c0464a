"""One settings object, read from `TIERSERVE_*` environment variables (and `.env`)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Literal

from platformdirs import user_data_path
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_data_dir() -> Path:
    """Per-user data directory, e.g. ``~/.local/share/tierserve`` on Linux."""
    return user_data_path("tierserve", appauthor=False)


class Settings(BaseSettings):
    """Configuration shared by the CLI, the ingest pipeline and the web app."""

    model_config = SettingsConfigDict(env_prefix="TIERSERVE_", env_file=".env", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir, description="Store and default database live here.")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default is a SQLite file in the data directory."
    )
    host: str = Field(default="127.0.0.1", description="Address the HTTP server binds to.")
    port: int = Field(default=8000, ge=0, le=65535, description="TCP port of the HTTP server.")
    workers: int = Field(default=1, ge=1, le=256, description="uvicorn worker processes.")
    access_log: bool = Field(
        default=True, description="Log every request (uvicorn's access log; off behind a proxy that logs)."
    )
    render_threads: int = Field(
        default_factory=lambda: 2 * (os.cpu_count() or 1), ge=1, description="Concurrent renders per worker."
    )
    decode_threads: int = Field(
        default_factory=lambda: os.cpu_count() or 1,
        ge=1,
        description="Threads decoding the tile rows of a read alone in its worker (1: on the reading thread).",
    )
    max_output_pixels: int = Field(
        default=200_000_000,
        ge=1,
        description="Largest output image in tier pixels (a whole 180-megapixel section fits).",
    )
    jpeg_chroma: Literal["auto", "420"] = Field(
        default="auto",
        description="JPEG chroma: auto = 4:2:0 below quality 90, 4:4:4 from 90; 420 = 4:2:0 at every quality.",
    )
    record_cache_seconds: float = Field(
        default=60.0, ge=0, description="Seconds a worker reuses an image's database record (0: always query)."
    )
    max_query_length: int = Field(default=16384, ge=256, description="Longest accepted query string (bytes).")
    max_queued_renders: int = Field(
        default=64, ge=0, description="Renders that may wait for a free render thread before 503s."
    )
    queue_timeout: float = Field(default=10.0, gt=0, description="Seconds a render may wait for a thread.")
    render_deadline: float = Field(default=120.0, gt=0, description="Seconds a render may take in all.")
    ingest_roots: list[Path] = Field(
        default_factory=list,
        description="Folders ingest may read sources from, besides the manifest's own folder (JSON list).",
    )
    cors_origins: list[str] = Field(
        default=["*"], description='Origins browsers may call the API from (JSON list, e.g. ["https://a.org"]).'
    )

    @property
    def resolved_database_url(self) -> str:
        """The configured database URL, or the embedded SQLite default."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'tierserve.db'}"

    @property
    def store_dir(self) -> Path:
        """Root of the local pyramid store."""
        return self.data_dir / "store"

    def export_environment(self) -> None:
        """Write these settings to `os.environ` so that worker processes read the same values."""
        for name, value in self.model_dump(mode="json").items():
            if value is not None:
                text = json.dumps(value) if isinstance(value, list | dict) else str(value)
                os.environ[f"TIERSERVE_{name.upper()}"] = text
