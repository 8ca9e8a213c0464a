"""One settings object, read from `TIERSERVE_*` environment variables (and `.env`).

Start-up settings are checked in one place, `load_settings` (values) and `Settings.check` (database
driver, folders): a wrong one raises `SettingsError`, which names each wrong setting, its value
(passwords masked) and what is expected.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from platformdirs import user_data_path
from pydantic import Field, ValidationError, field_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings import SettingsError as SourceError
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from tierserve.storage import Store, open_store
from tierserve.storage.urls import store_url_scheme

ENV_PREFIX = "TIERSERVE_"
DATABASE_EXAMPLES = "sqlite:////path/to/tierserve.db or postgresql+psycopg://user:password@host/database"
POSTGRES_INSTALL = "pip install 'tierserve[postgres]'"
#: Default `inline_render_pixels` when each worker has a core at most: a 1000 x 1000 region or a 1000 x 625
#: tier renders on the event loop, cheaper than on a render thread (measured in docs/performance.md).
INLINE_PIXELS_ONE_CORE = 1024 * 1024
#: ... when a worker has several cores: larger renders go to render threads, which use the other cores.
INLINE_PIXELS_SHARED_CORES = 512 * 512


def cpu_cores() -> int:
    """The CPU cores this process may run on (its affinity mask; the machine's count where the OS keeps
    none)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def default_data_dir() -> Path:
    """Per-user data directory, e.g. ``~/.local/share/tierserve`` on Linux."""
    return user_data_path("tierserve", appauthor=False)


class Settings(BaseSettings):
    """Configuration shared by the CLI, the ingest pipeline and the web app."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=".env", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir, description="Store and default database live here.")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default is a SQLite file in the data directory."
    )
    store_url: str | None = Field(
        default=None,
        description="Where pyramids live: file:///path, s3://bucket/prefix (also gs://, az://); "
        "default: the data directory's store. Object store endpoint and credentials: AWS_* variables.",
    )
    host: str = Field(default="127.0.0.1", description="Address the HTTP server binds to.")
    port: int = Field(default=8000, ge=0, le=65535, description="TCP port of the HTTP server.")
    workers: int = Field(default=1, ge=1, le=256, description="uvicorn worker processes.")
    access_log: bool = Field(
        default=True,
        description="Log every request: method, path, status, bytes, milliseconds, request id (off behind a proxy "
        "that logs).",
    )
    log_format: Literal["text", "json"] = Field(
        default="text", description="Log lines as uvicorn's text, or one JSON object per line (json)."
    )
    metrics: bool = Field(default=True, description="Serve Prometheus metrics at /metrics (false: 404).")
    readiness_cache_seconds: float = Field(
        default=5.0, ge=0, description="Seconds a worker reuses its /readyz probes of the database and the store."
    )
    readiness_timeout: float = Field(
        default=2.0, gt=0, description="Seconds a /readyz probe may take before it counts as failed."
    )
    reuse_port: bool = Field(
        default=True,
        description="With several workers, a listening socket each (SO_REUSEPORT, Linux): the kernel spreads new "
        "connections over the workers (false: one shared socket, the first worker to wake takes them).",
    )
    rebalance_connections: bool = Field(
        default=True,
        description="With a socket per worker: a worker holding more than its share of the open connections "
        "closes one after a response (connection: close), so that the client's reconnection is hashed again.",
    )
    render_threads: int = Field(
        default_factory=lambda: 2 * cpu_cores(), ge=1, description="Concurrent renders per worker."
    )
    decode_threads: int = Field(
        default_factory=lambda: cpu_cores(),  # looked up when called (tests replace it)
        ge=1,
        description="Threads decoding the tile rows of a read alone in its worker while the workers hold fewer "
        "open connections than CPU cores (1: on the reading thread).",
    )
    jpeg_dct: Literal["accurate", "fast"] = Field(
        default="accurate",
        description="Inverse DCT decoding stored 8-bit JPEG tiles in reads of up to 4 Mpx: accurate = libvips' "
        "pixels; fast = libjpeg-turbo's fast integer DCT (2-5% less decode CPU, 45 dB PSNR from accurate). Larger "
        "reads (libvips) and every encode stay accurate.",
    )
    tile_passthrough: bool = Field(
        default=True,
        description="Answer a JPEG request for exactly one whole stored tile, at the quality it was stored at and "
        "with no display option, with the stored tile's own stream: no decode, no encode; the pixels a render would "
        "start from, in the stored chroma.",
    )
    inline_render_pixels: int | None = Field(
        default=None,
        ge=0,
        description="Reads (and outputs) of at most this many pixels from a local store are rendered on the event "
        "loop, without the hop to a render thread (0: none; reads that libvips streams, beyond 2048 x 2048, never). "
        "Default: 1024 x 1024 when each worker has a core at most (workers >= CPU cores), else 512 x 512, so that "
        "render threads use the other cores.",
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
    iiif_jpeg_quality: int = Field(
        default=90, ge=1, le=100, description="JPEG (and WebP) quality of IIIF Image API images, e.g. default.jpg."
    )
    record_cache_seconds: float = Field(
        default=60.0, ge=0, description="Seconds a worker reuses an image's database record (0: always query)."
    )
    output_cache_bytes: int = Field(
        default=32 * 1024 * 1024,
        ge=0,
        description="Bytes of small encoded answers (tiles) a worker keeps by ETag; 0 turns the cache off.",
    )
    max_query_length: int = Field(default=16384, ge=256, description="Longest accepted query string (bytes).")
    max_header_line: int = Field(default=8192, ge=256, description="Longest request header line (bytes); 431 beyond.")
    max_header_bytes: int = Field(
        default=32768, ge=1024, description="Longest request header fields in all (bytes); 431 beyond."
    )
    idle_timeout: float = Field(
        default=15.0, gt=0, description="Seconds a connection may wait for a complete request head before it is closed."
    )
    max_queued_renders: int = Field(
        default=64, ge=0, description="Renders that may wait for a free render thread before 503s."
    )
    queue_timeout: float = Field(default=10.0, gt=0, description="Seconds a render may wait for a thread.")
    render_deadline: float = Field(default=120.0, gt=0, description="Seconds a render may take in all.")
    store_retry_timeout: float = Field(
        default=10.0,
        gt=0,
        description="Seconds an object-store request is retried (throttling, timeouts, drops) before a 503; "
        "below render_deadline.",
    )
    store_coalesce_bytes: int = Field(
        default=65536,
        ge=0,
        description="Byte ranges of one object-store read closer than this share a GET (bench.store).",
    )
    ingest_roots: list[Path] = Field(
        default_factory=list,
        description="Folders ingest may read sources from, besides the manifest's own folder (JSON list).",
    )
    cors_origins: list[str] = Field(
        default=["*"], description='Origins browsers may call the API from (JSON list, e.g. ["https://a.org"]).'
    )
    public_url: str | None = Field(
        default=None,
        description="Base URL clients reach this server at, e.g. https://images.example.org/tierserve, for the "
        "links in IIIF documents; default: each request's scheme, host and root path.",
    )

    @field_validator("public_url")
    @classmethod
    def _absolute_http_url(cls, value: str | None) -> str | None:
        """An http(s) URL with a host and no query or fragment, kept without its trailing slash (empty: unset)."""
        if not value:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
            raise ValueError(
                "expected an http(s) URL without query or fragment, e.g. https://images.example.org/tierserve"
            )
        return value.rstrip("/")

    @property
    def resolved_database_url(self) -> str:
        """The configured database URL, or the embedded SQLite default."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'tierserve.db'}"

    @property
    def resolved_store_url(self) -> str:
        """The configured store URL, or the data directory's local store (``file:///<data dir>/store``)."""
        return self.store_url or (self.data_dir / "store").absolute().as_uri()

    @property
    def resolved_inline_render_pixels(self) -> int:
        """`inline_render_pixels`, or its default for this many workers on this machine's cores."""
        if self.inline_render_pixels is not None:
            return self.inline_render_pixels
        one_core_each = self.workers >= cpu_cores()
        return INLINE_PIXELS_ONE_CORE if one_core_each else INLINE_PIXELS_SHARED_CORES

    def open_store(self) -> Store:
        """The store at `resolved_store_url` (object stores keep ingest scratch in the data directory)."""
        return open_store(self.resolved_store_url, self.data_dir, self.store_retry_timeout, self.store_coalesce_bytes)

    def export_environment(self) -> None:
        """Write these settings to `os.environ` so that worker processes read the same values."""
        for name, value in self.model_dump(mode="json").items():
            if value is not None:
                text = json.dumps(value) if isinstance(value, list | dict) else str(value)
                os.environ[f"{ENV_PREFIX}{name.upper()}"] = text

    def check(self) -> None:
        """Check the database URL and create the data directory; raises `SettingsError` naming what is wrong.

        The data directory is created (with its parents only at the default location); a SQLite file
        elsewhere must be in an existing folder.
        """
        problems = [*_data_dir_problems(self), *_database_problems(self), *_store_problems(self)]
        if problems:
            raise SettingsError(problems)


@dataclass(frozen=True)
class Problem:
    """One wrong setting: the field, its value as shown (passwords masked) and what is expected."""

    field: str
    value: str
    expected: str

    def line(self, options: Collection[str] = ()) -> str:
        """``NAME=VALUE: expected``, NAME being the command-line option if the field was given there."""
        name = f"--{self.field.replace('_', '-')}" if self.field in options else f"{ENV_PREFIX}{self.field.upper()}"
        return f"{name}={shlex.quote(self.value)}: {self.expected}"


class SettingsError(Exception):
    """Settings that are wrong at start-up; the CLI prints one line per problem and exits 2."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(problem.line() for problem in problems))
        self.problems = problems

    def lines(self, options: Collection[str] = ()) -> list[str]:
        return [problem.line(options) for problem in self.problems]


def _store_problems(settings: Settings) -> list[Problem]:
    try:
        store_url_scheme(settings.resolved_store_url)
    except ValueError as exc:
        return [Problem("store_url", str(settings.store_url), str(exc))]
    if settings.store_retry_timeout >= settings.render_deadline:
        expected = f"less than render_deadline ({settings.render_deadline:g} s), so that a render ends with a 503"
        return [Problem("store_retry_timeout", f"{settings.store_retry_timeout:g}", expected)]
    return []


def load_settings(options: Mapping[str, Any] | None = None) -> Settings:
    """The environment's settings with command-line options (field -> value) on top; raises SettingsError.

    Values are validated here; `Settings.check` then checks what needs the outside world (database
    driver, folders) before a command does any work.
    """
    try:
        return Settings(**(options or {}))
    except ValidationError as exc:
        raise SettingsError([_validation_problem(error) for error in exc.errors()]) from exc
    except SourceError as exc:
        raise SettingsError([_source_problem(exc)]) from exc


def default_text(field: str) -> str:
    """A field's default as help texts show it."""
    if field == "database_url":
        return "sqlite:///<data dir>/tierserve.db"
    return str(Settings.model_fields[field].get_default(call_default_factory=True))


def mask_url(url: str) -> str:
    """`url` with its password replaced by ``***`` (also when it does not parse)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return re.sub(r"(://[^/:@]*:)[^/@]*@", r"\1***@", url)


def _shown(field: str, value: Any) -> str:
    if field == "database_url" and isinstance(value, str):
        return mask_url(value)
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _validation_problem(error: ErrorDetails) -> Problem:
    """A pydantic error on one field as a Problem (the item's index for an item of a list)."""
    field, *rest = error["loc"]
    where = f" (item {'.'.join(map(str, rest))})" if rest else ""
    return Problem(str(field), _shown(str(field), error["input"]), f"{error['msg'].lower()}{where}")


def _source_problem(exc: SourceError) -> Problem:
    """A value the environment source could not parse, e.g. bad JSON in a list setting."""
    found = re.search(r'field "(\w+)"', str(exc))
    if found is None:
        raise exc
    field = found.group(1)
    cause = exc.__cause__
    value = getattr(cause, "doc", None)
    if value is None:
        value = os.environ.get(f"{ENV_PREFIX}{field.upper()}", "")
    reason = f" ({cause})" if cause is not None else ""
    return Problem(field, str(value), f'expected a JSON list, e.g. ["a", "b"]{reason}')


def _data_dir_problems(settings: Settings) -> list[Problem]:
    """Create the data directory: with its parents at the default location, only the last folder elsewhere."""
    given = "data_dir" in settings.model_fields_set
    try:
        settings.data_dir.mkdir(parents=not given, exist_ok=True)
    except FileNotFoundError:
        expected = f"its parent folder {settings.data_dir.parent} does not exist"
    except FileExistsError:
        expected = "expected a directory; this is a file"
    except OSError as exc:
        expected = f"cannot create it: {exc.strerror}"
    else:
        return []
    return [Problem("data_dir", str(settings.data_dir), expected)]


def _database_problems(settings: Settings) -> list[Problem]:
    """What is wrong with the database URL: syntax, dialect, driver module, SQLite folder."""
    text = settings.resolved_database_url
    try:
        url = make_url(text)
    except (ArgumentError, ValueError):
        return [Problem("database_url", mask_url(text), f"not a database URL; expected e.g. {DATABASE_EXAMPLES}")]
    expected = _driver_problem(url)
    if expected is None and settings.database_url:
        expected = _sqlite_folder_problem(url)
    if expected is None:
        return []
    return [Problem("database_url", url.render_as_string(hide_password=True), expected)]


def _driver_problem(url: URL) -> str | None:
    """Load the dialect and import its driver module the way SQLAlchemy will."""
    try:
        dialect = url.get_dialect()
    except NoSuchModuleError:
        return f"unknown database or driver '{url.drivername}'; expected e.g. {DATABASE_EXAMPLES}"
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        module = exc.name or url.get_driver_name()
        if url.get_backend_name() != "postgresql":
            return f"its driver module {module} is not installed"
        if url.get_driver_name() != "psycopg":
            return f"its driver module {module} is not installed; use postgresql+psycopg:// and {POSTGRES_INSTALL}"
        return f"the PostgreSQL driver ({module}) is not installed: {POSTGRES_INSTALL}"
    return None


def _sqlite_folder_problem(url: URL) -> str | None:
    """A SQLite file given by URL must be in a folder that exists (the default one is in the data directory)."""
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    folder = Path(url.database).parent
    return None if folder.is_dir() else f"the folder {folder} does not exist (create it, or choose another file)"
