"""The `tierserve` command: ingest a manifest, serve, or build and serve the demo collection."""

from __future__ import annotations

import asyncio
import json
import logging
import logging.config
import math
import time
from collections.abc import Collection, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from tierserve import __version__
from tierserve.core.tiers import TILE
from tierserve.db.database import Database
from tierserve.db.models import SubImage
from tierserve.errors import ManifestError
from tierserve.ingest import gc as garbage
from tierserve.ingest.distributed import DaskBuilder, DaskUnavailable, dask_client, require_dask
from tierserve.ingest.manifest import Manifest, load_manifest, manifest_json_schema
from tierserve.ingest.pipeline import Ingestor, IngestReport
from tierserve.layers import LayerKind
from tierserve.remote.catalog import Selection, SelectionError
from tierserve.remote.download import FileFormat, FileOptions, UsageError, parse_range, run_download
from tierserve.remote.progress import transfer_progress
from tierserve.remote.regions import REGION_SIZE
from tierserve.remote.source import SourceClient, SourceError
from tierserve.settings import ENV_PREFIX, Problem, Settings, SettingsError, default_text, load_settings, mask_url
from tierserve.storage import Store

if TYPE_CHECKING:
    from tierserve.demo.collection import DemoPlan
    from tierserve.remote.mirror import MirrorReport

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode="rich",
    help="Allen-compatible image download service.",
)
console = Console(stderr=True)

#: Off a terminal, seconds between the "tiles written" lines of one image.
PROGRESS_LINE_SECONDS = 10.0
#: How the ingest progress names an image's outcome, and the colour of its bar.
OUTCOME_WORDS = {"ingested": "ingested", "skipped": "already present", "failed": "failed"}
OUTCOME_STYLES = {"ingested": "green", "skipped": "dim", "failed": "red"}


def _option(text: str, field: str) -> Any:
    """A settings option (None: not given): its help names the variable and the Settings model's default.

    Only the settings object reads the environment (no `envvar`), so an option's default is None and
    the help text shows the real one.
    """
    notes = escape(f"[env var: {ENV_PREFIX}{field.upper()}] [default: {default_text(field)}]")
    return typer.Option(help=f"{text} {notes}", show_default=False)


DataDir = Annotated[Path | None, _option("Data directory (pyramid store, SQLite file).", "data_dir")]
DatabaseUrl = Annotated[str | None, _option("SQLAlchemy database URL.", "database_url")]
Host = Annotated[str | None, _option("Bind address.", "host")]
Port = Annotated[int | None, _option("TCP port.", "port")]
Workers = Annotated[int | None, _option("Worker processes.", "workers")]


#: The public Allen API, the default source of `mirror` and `download`.
ALLEN_API = "https://api.brain-map.org"
SourceUrl = Annotated[str, typer.Option("--source", help="Base URL of an Allen-compatible server (any tierserve too).")]
DataSetIds = Annotated[
    list[int] | None, typer.Option("--data-set", min=1, help="SectionDataSet id (repeat for several).")
]
AtlasIds = Annotated[
    list[int] | None, typer.Option("--atlas", min=1, help="Atlas id: its plates with their annotations (repeatable).")
]
Criteria = Annotated[
    str | None, typer.Option("--query", help=escape('RMA criteria for SectionDataSets, e.g. "[failed$eqfalse]".'))
]
Concurrency = Annotated[int, typer.Option(min=1, max=64, help="Requests in flight at once.")]
Attempts = Annotated[int, typer.Option(min=1, max=20, help="Tries per request (5xx, timeouts, dropped connections).")]
RequestTimeout = Annotated[float, typer.Option("--timeout", min=1, help="Seconds to wait for each answer.")]


def _selection(data_set: list[int] | None, atlas: list[int] | None, query: str | None) -> Selection:
    """The selection of `mirror` and `download`; exits 2 when nothing is selected."""
    selection = Selection(tuple(data_set or ()), tuple(atlas or ()), query)
    if selection.empty:
        _error("select something: --data-set ID, --atlas ID or --query CRITERIA")
        raise typer.Exit(2)
    return selection


def _given(**options: Any) -> dict[str, Any]:
    """The command-line options that were given (field -> value)."""
    return {field: value for field, value in options.items() if value is not None}


def _line(text: str) -> None:
    """Print `text` as one plain line (no markup, no wrapping)."""
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def _error(message: str) -> None:
    console.print(Text.assemble(("error:", "red"), " ", message), soft_wrap=True)


@contextmanager
def _settings_errors(options: Collection[str]) -> Iterator[None]:
    """Turn a SettingsError into one line per wrong setting (named as it was given) and exit code 2."""
    try:
        yield
    except SettingsError as exc:
        for line in exc.lines(options):
            _error(line)
        raise typer.Exit(2) from exc


def _open_database(settings: Settings, store: Store | None = None) -> Database:
    """Check the settings and open their database with its schema migrated (asking `store` what a
    migration needs of stored files); raises SettingsError."""
    settings.check()
    database = Database(settings.resolved_database_url)
    try:
        database.migrate(store)
    except OperationalError as exc:
        database.dispose()
        reason = str(exc.orig if exc.orig is not None else exc).strip().splitlines()[0]
        url = mask_url(settings.resolved_database_url)
        raise SettingsError([Problem("database_url", url, f"cannot reach the database: {reason}")]) from exc
    return database


@contextmanager
def _progress_bars() -> Iterator[Progress | None]:
    """Rich progress bars on a terminal; None otherwise (the caller prints plain lines instead)."""
    if not console.is_terminal:
        yield None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        yield progress


@dataclass
class _ImageProgress:
    """An image under way: its tile count, the tiles written so far and its bar (on a terminal)."""

    tiles: int
    written: int = 0
    task: TaskID | None = None


class _ProgressObserver:
    """Ingest progress: a bar per image on a terminal (red when it failed), plain lines otherwise.

    Off a terminal each image gets one line as it finishes (``ingested 3/14: ENTRY``) and, while images
    are written, a line of tiles written at most every PROGRESS_LINE_SECONDS. A failure's message is
    left to the final table. Images may be under way side by side: every event names its entry.
    """

    def __init__(self, progress: Progress | None, images: int) -> None:
        self.progress = progress
        self.images = images
        self.finished = 0
        self.under_way: dict[str, _ImageProgress] = {}
        self.last_line = time.monotonic()

    def image_started(self, entry: str, tiles: int) -> None:
        task = None if self.progress is None else self.progress.add_task(escape(entry), total=tiles)
        self.under_way[entry] = _ImageProgress(tiles, task=task)

    def tiles_written(self, entry: str, count: int) -> None:
        image = self.under_way.get(entry)
        if image is None:
            return
        image.written += count
        if self.progress is not None and image.task is not None:
            self.progress.advance(image.task, count)
        elif self.progress is None and time.monotonic() - self.last_line >= PROGRESS_LINE_SECONDS:
            self.last_line = time.monotonic()
            _line(f"  {entry}: {image.written}/{image.tiles} tiles written")

    def image_finished(self, entry: str, outcome: str) -> None:
        self.finished += 1
        image = self.under_way.pop(entry, None)
        word = OUTCOME_WORDS.get(outcome, outcome)
        if self.progress is None:
            _line(f"{word} {self.finished}/{self.images}: {entry}")
        else:
            self._mark(self.progress, image.task if image else None, entry, outcome, word)

    @staticmethod
    def _mark(progress: Progress, task: TaskID | None, entry: str, outcome: str, word: str) -> None:
        """Colour the image's bar by outcome (an image that never started gets a one-step bar)."""
        if task is None:
            task = progress.add_task("", total=1, completed=0 if outcome == "failed" else 1)
        label = escape(entry) if outcome == "ingested" else f"{escape(entry)}: {word}"
        progress.update(task, description=f"[{OUTCOME_STYLES.get(outcome, 'red')}]{label}")


def _image_count(manifest: Manifest) -> int:
    sections = sum(len(data_set.images) for data_set in manifest.section_data_sets)
    return sections + sum(len(data_set.images) for data_set in manifest.atlas_data_sets)


def run_ingest(settings: Settings, manifest_path: Path, cluster: Cluster | None = None) -> IngestReport:
    """Validate and ingest a manifest, showing progress; prints a summary and a table of failed entries.

    With `cluster`, images are built on Dask workers (raises `DaskUnavailable` without Dask).
    """
    manifest = load_manifest(manifest_path)
    store = settings.open_store()
    database = _open_database(settings, store)
    try:
        with _progress_bars() as progress, ExitStack() as stack:
            observer = _ProgressObserver(progress, _image_count(manifest))
            builder = None
            if cluster is not None:
                client = stack.enter_context(dask_client(cluster.workers, cluster.scheduler))
                builder = DaskBuilder(client, settings.resolved_store_url, settings.data_dir)
            ingestor = Ingestor(database, store, observer, roots=settings.ingest_roots, builder=builder)
            report = ingestor.run(manifest, manifest_path.parent.absolute())
    finally:
        database.dispose()
    console.print(
        f"ingested {len(report.ingested)}, already present {len(report.skipped)}, failed {len(report.failed)}"
    )
    _problem_table("Failed entries", "manifest entry", "problem", report.failed)
    _problem_table("Ingested with warnings", "manifest entry", "warning", report.warnings)
    return report


def _problem_table(title: str, what: str, problem: str, rows: Collection[tuple[str, str]]) -> None:
    """A table of (name, message) rows, printed only when there are any."""
    if rows:
        table = Table(what, problem, title=title)
        for name, message in rows:
            table.add_row(escape(name), escape(message))
        console.print(table)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _collection_summary(database: Database, settings: Settings) -> str:
    """What `serve` serves: image counts, the store and the database (password masked)."""
    with database.session() as session:
        rows = session.execute(select(SubImage.type, func.count()).group_by(SubImage.type)).tuples()
        counts = dict(rows.all())
    sections, atlases = counts.get("SectionImage", 0), counts.get("AtlasImage", 0)
    if sections + atlases == 0:
        return "no images ingested yet: run 'tierserve ingest MANIFEST' or 'tierserve demo'"
    kinds = f"{_plural(sections, 'section image')}, {_plural(atlases, 'atlas image')}"
    where = f"{settings.resolved_store_url}; database {mask_url(settings.resolved_database_url)}"
    return f"serving {_plural(sections + atlases, 'image')} ({kinds}) from {where}"


def _serve(settings: Settings) -> None:
    import uvicorn

    from tierserve.api import workers
    from tierserve.api.http_protocol import BoundedHttpToolsProtocol
    from tierserve.logs import log_config
    from tierserve.metrics import multiprocess_folder

    database = _open_database(settings, settings.open_store())
    try:
        summary = _collection_summary(database, settings)
    finally:
        database.dispose()
    settings.export_environment()
    logging_config = log_config(settings.log_format)
    logging.config.dictConfig(logging_config)
    say = _line if settings.log_format == "text" else logging.getLogger("tierserve.serve").info
    say(f"data directory: {settings.data_dir}")
    say(summary)
    say(f"viewer: http://{settings.host}:{settings.port}/viewer/")
    config = uvicorn.Config(
        "tierserve.api.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_config=logging_config,
        log_level="info",
        access_log=False,  # tierserve's own access log (api.accounting) has the duration, bytes and request id
        http=BoundedHttpToolsProtocol,
        timeout_keep_alive=math.ceil(settings.idle_timeout),
    )
    with multiprocess_folder(settings.metrics and settings.workers > 1):
        workers.run(config, reuse_port=settings.reuse_port, rebalance=settings.rebalance_connections)


def _generate_demo_sources(plan: DemoPlan) -> Path:
    """Write the demo's source files (first run only), showing each file as it is written."""
    from tierserve.demo.collection import SOURCE_FILE_COUNT, build_demo_sources

    if plan.manifest_path.exists():
        return plan.manifest_path
    _line(f"generating {SOURCE_FILE_COUNT} demo source files in {plan.directory} (first run only)")
    written = 0
    with _progress_bars() as progress:
        task = None if progress is None else progress.add_task("generating demo sources", total=SOURCE_FILE_COUNT)

        def on_file(name: str) -> None:
            nonlocal written
            written += 1
            if progress is None or task is None:
                _line(f"generated {written}/{SOURCE_FILE_COUNT}: {name}")
            else:
                progress.update(task, advance=1, description=f"generated {escape(name)}")

        return build_demo_sources(plan, on_file=on_file)


@dataclass(frozen=True)
class Cluster:
    """Where ingest builds images: a new local Dask cluster of `workers` processes, or `scheduler`."""

    workers: int | None = None
    scheduler: str | None = None


@app.command()
def ingest(
    manifest: Annotated[Path, typer.Argument(help="Manifest file (YAML or JSON).", metavar="MANIFEST", exists=False)],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    dask_workers: Annotated[
        int | None,
        typer.Option(min=1, help="Build images on a local Dask cluster of N worker processes (needs tierserve[dask])."),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            help="Build images on the Dask cluster of this scheduler, e.g. tcp://host:8786 (needs tierserve[dask])."
        ),
    ] = None,
) -> None:
    """Ingest the collection described by MANIFEST (already ingested images are skipped)."""
    options = _given(data_dir=data_dir, database_url=database_url)
    if dask_workers is not None and scheduler is not None:
        _error("give --dask-workers or --scheduler, not both")
        raise typer.Exit(2)
    cluster = Cluster(dask_workers, scheduler) if dask_workers is not None or scheduler is not None else None
    with _settings_errors(options):
        settings = load_settings(options)
        _line(f"data directory: {settings.data_dir}")
        try:
            if cluster is not None:
                require_dask()
            report = run_ingest(settings, manifest, cluster)
        except (ManifestError, DaskUnavailable) as exc:
            _error(exc.message)
            raise typer.Exit(2) from exc
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def serve(
    host: Host = None,
    port: Port = None,
    workers: Workers = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Serve the ingested collection over HTTP."""
    options = _given(host=host, port=port, workers=workers, data_dir=data_dir, database_url=database_url)
    with _settings_errors(options):
        _serve(load_settings(options))


@app.command()
def demo(
    host: Host = None,
    port: Port = None,
    workers: Workers = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    scale: Annotated[float, typer.Option(min=0.01, max=1.0, help="Size of the demo images (1 = full).")] = 1.0,
    serve_after: Annotated[bool, typer.Option("--serve/--no-serve", help="Serve after building.")] = True,
) -> None:
    """Build the demo collection if absent, ingest it, and serve it."""
    from tierserve.demo.collection import DemoPlan, example_urls

    options = _given(host=host, port=port, workers=workers, data_dir=data_dir, database_url=database_url)
    with _settings_errors(options):
        settings = load_settings(options)
        _open_database(settings, settings.open_store()).dispose()
        _line(f"data directory: {settings.data_dir}")
        manifest = _generate_demo_sources(DemoPlan(settings.data_dir / "demo-sources", scale))
        if not run_ingest(settings, manifest).ok:
            raise typer.Exit(1)
        base = f"http://{settings.host}:{settings.port}"
        _line("try:\n  " + "\n  ".join(example_urls(base, scale)))
        if serve_after:
            _serve(settings)


@app.command()
def migrate(database_url: DatabaseUrl = None, data_dir: DataDir = None) -> None:
    """Create or upgrade the database schema to the newest revision."""
    options = _given(data_dir=data_dir, database_url=database_url)
    with _settings_errors(options):
        settings = load_settings(options)
        _open_database(settings, settings.open_store()).dispose()
    _line(f"schema is up to date: {mask_url(settings.resolved_database_url)}")


@app.command()
def gc(
    grace_hours: Annotated[
        float, typer.Option(min=0, help="Leave alone what is younger than this (a running ingest's files).")
    ] = 24.0,
    delete: Annotated[
        bool, typer.Option("--delete", help="Remove orphan files and dead scratch (else only list).")
    ] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """List what ingest left in the store (and remove it with --delete); report recorded files that are
    missing or were replaced (exit 1 if any)."""
    options = _given(data_dir=data_dir, database_url=database_url)
    with _settings_errors(options):
        settings = load_settings(options)
        store = settings.open_store()
        database = _open_database(settings, store)
    try:
        findings = garbage.collect(database, store, grace_hours * 3600)
    finally:
        database.dispose()
    _line(f"store {settings.resolved_store_url}: {len(findings)} found")
    for finding in findings:
        _line(f"{finding.kind.value}: {finding.name} ({finding.detail})")
    removable = [finding for finding in findings if finding.kind.removable]
    if delete:
        _line(f"removed {garbage.remove(store, removable)} orphan files and dead scratch folders")
    else:
        _line(f"{len(removable)} removable (run with --delete to remove them)")
    if not settings.resolved_store_url.startswith("file:"):
        _line(
            "interrupted multipart uploads are not listed: give the bucket a rule that aborts them (docs/operations.md)"
        )
    if any(not finding.kind.removable for finding in findings):
        raise typer.Exit(1)


@app.command()
def mirror(
    source: SourceUrl = ALLEN_API,
    data_set: DataSetIds = None,
    atlas: AtlasIds = None,
    query: Criteria = None,
    concurrency: Concurrency = 4,
    attempts: Attempts = 6,
    timeout: RequestTimeout = 60.0,
    region_size: Annotated[
        int, typer.Option(min=256, max=16384, help="Edge of a fetched region, full-resolution pixels (x256).")
    ] = REGION_SIZE,
    quality: Annotated[int, typer.Option(min=1, max=100, help="JPEG quality of the local 8-bit tiles.")] = 90,
    work_dir: Annotated[
        Path | None, typer.Option(help="Where fetched regions wait for ingest [default: DATA_DIR/mirror].")
    ] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Copy data sets from an Allen-compatible server into the local collection (resumable; exit 1 if
    anything could not be fetched)."""
    from tierserve.remote.mirror import Mirror, MirrorOptions

    if region_size % TILE:
        _error(f"--region-size must be a multiple of the {TILE}-pixel tile, got {region_size}")
        raise typer.Exit(2)
    selection = _selection(data_set, atlas, query)
    options = _given(data_dir=data_dir, database_url=database_url)
    with _settings_errors(options):
        settings = load_settings(options)
        store = settings.open_store()
        database = _open_database(settings, store)
    _line(f"data directory: {settings.data_dir}; source {source}")

    async def run() -> MirrorReport:
        async with SourceClient(source, concurrency=concurrency, timeout=timeout, attempts=attempts) as client:
            with transfer_progress(console, client.stats) as progress:
                where = work_dir or settings.data_dir / "mirror"
                mirroring = Mirror(client, database, store, where, progress, MirrorOptions(region_size, quality))
                report = await mirroring.run(selection)
                _line(progress.summary())
                return report

    try:
        report = asyncio.run(run())
    except SourceError as exc:
        _error(exc.message)
        raise typer.Exit(1) from exc
    finally:
        database.dispose()
    console.print(
        f"mirrored {len(report.mirrored)}, already present {len(report.present)}, failed {len(report.failed)}"
    )
    _problem_table("Failed images", "image", "problem", report.failed)
    _problem_table("Mirrored with warnings", "image", "warning", report.warnings)
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def download(
    out: Annotated[Path, typer.Option("--out", help="Folder of the files and manifest.json (created if absent).")],
    source: SourceUrl = ALLEN_API,
    data_set: DataSetIds = None,
    atlas: AtlasIds = None,
    query: Criteria = None,
    downsample: Annotated[
        int | None, typer.Option(min=0, max=32, help="Tier: halvings of width and height (the source's default: 0).")
    ] = None,
    quality: Annotated[
        int | None, typer.Option(min=0, max=100, help="JPEG quality (the source's default: 100).")
    ] = None,
    view: Annotated[
        LayerKind, typer.Option(help="Layer; annotation on --atlas plates asks for that atlas's drawing.")
    ] = LayerKind.PRIMARY,
    channel_range: Annotated[
        str | None,
        typer.Option(
            "--range",
            help="Channel window rl,ru,gl,gu,bl,bu (native samples), or 'equalization': each data set's record.",
        ),
    ] = None,
    file_format: Annotated[
        FileFormat, typer.Option("--format", help="File encoding (png, tiff: tierserve sources only).")
    ] = FileFormat.JPEG,
    left: Annotated[int | None, typer.Option(min=0, help="Region's left column, full-resolution pixels.")] = None,
    top: Annotated[int | None, typer.Option(min=0, help="Region's top row, full-resolution pixels.")] = None,
    width: Annotated[int | None, typer.Option(min=1, help="Region's width, tier pixels.")] = None,
    height: Annotated[int | None, typer.Option(min=1, help="Region's height, tier pixels.")] = None,
    concurrency: Concurrency = 4,
    attempts: Attempts = 6,
    timeout: RequestTimeout = 60.0,
) -> None:
    """Download the selected images to files {id}.{ext} under --out, with a manifest.json (re-runs skip
    complete files; exit 1 if an image could not be fetched)."""
    selection = _selection(data_set, atlas, query)
    try:
        ranges = parse_range(channel_range) if channel_range is not None else None
    except UsageError as exc:
        _error(exc.message)
        raise typer.Exit(2) from exc
    options = FileOptions(downsample, quality, view, ranges, file_format, left, top, width, height)
    _line(f"source {source}; files in {out}")
    try:
        report = asyncio.run(
            run_download(
                source, selection, options, out, console, concurrency=concurrency, attempts=attempts, timeout=timeout
            )
        )
    except SelectionError as exc:
        _error(exc.message)
        raise typer.Exit(2) from exc
    except SourceError as exc:
        _error(exc.message)
        raise typer.Exit(1) from exc
    _line(report.summary())
    _problem_table("Failed images", "file", "problem", [(f.job.file_name, f.error) for f in report.failures])
    if not report.ok:
        raise typer.Exit(1)


@app.command("manifest-schema")
def manifest_schema() -> None:
    """Print the JSON Schema of the ingest manifest."""
    typer.echo(json.dumps(manifest_json_schema(), indent=2))


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app()
