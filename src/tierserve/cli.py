"""The `tierserve` command: ingest a manifest, serve, or build and serve the demo collection."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from tierserve import __version__
from tierserve.db.database import Database
from tierserve.errors import ManifestError
from tierserve.ingest.manifest import load_manifest, manifest_json_schema
from tierserve.ingest.pipeline import Ingestor, IngestReport
from tierserve.settings import Settings
from tierserve.storage import LocalStore

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Allen-compatible image download service.")
console = Console(stderr=True)

DataDir = Annotated[Path | None, typer.Option(help="Data directory [env: TIERSERVE_DATA_DIR].")]
DatabaseUrl = Annotated[str | None, typer.Option(help="SQLAlchemy URL [env: TIERSERVE_DATABASE_URL].")]
Host = Annotated[str | None, typer.Option(help="Bind address [env: TIERSERVE_HOST].")]
Port = Annotated[int | None, typer.Option(help="TCP port [env: TIERSERVE_PORT].")]
Workers = Annotated[int | None, typer.Option(help="Worker processes [env: TIERSERVE_WORKERS].")]


def _settings(**overrides: Any) -> Settings:
    """Environment settings with the command-line options that were given on top."""
    given = {key: value for key, value in overrides.items() if value is not None}
    return Settings(**given)


class _RichObserver:
    """Draws one progress bar per image from the ingest pipeline's events."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: TaskID | None = None

    def image_started(self, entry: str, tiles: int) -> None:
        self.task = self.progress.add_task(entry, total=tiles)

    def tiles_written(self, count: int) -> None:
        if self.task is not None:
            self.progress.advance(self.task, count)

    def layer_published(self, entry: str, key: str) -> None: ...

    def before_commit(self, entry: str) -> None: ...

    def image_finished(self, entry: str, outcome: str) -> None:
        if self.task is not None and outcome == "ingested":
            self.progress.update(self.task, description=f"[green]{entry}")
        elif outcome != "ingested":
            console.print(f"{entry}: {outcome}")
        self.task = None


def run_ingest(settings: Settings, manifest_path: Path) -> IngestReport:
    """Validate and ingest a manifest with progress bars; prints a summary."""
    manifest = load_manifest(manifest_path)
    database = Database(settings.resolved_database_url)
    database.migrate()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    try:
        with Progress(*columns, console=console, transient=False) as progress:
            ingestor = Ingestor(
                database, LocalStore(settings.store_dir), _RichObserver(progress), roots=settings.ingest_roots
            )
            report = ingestor.run(manifest, manifest_path.parent)
    finally:
        database.dispose()
    console.print(
        f"ingested {len(report.ingested)}, already present {len(report.skipped)}, failed {len(report.failed)}"
    )
    if report.failed:
        table = Table("manifest entry", "problem", title="Failed entries")
        for entry, message in report.failed:
            table.add_row(entry, message)
        console.print(table)
    return report


def _serve(settings: Settings) -> None:
    import uvicorn

    database = Database(settings.resolved_database_url)
    database.migrate()
    database.dispose()
    settings.export_environment()
    console.print(f"data directory: {settings.data_dir}")
    uvicorn.run(
        "tierserve.api.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level="info",
        access_log=settings.access_log,
    )


@app.command()
def ingest(
    manifest: Annotated[Path, typer.Argument(help="Manifest file (YAML or JSON).", exists=False)],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Ingest the collection described by MANIFEST (already ingested images are skipped)."""
    settings = _settings(data_dir=data_dir, database_url=database_url)
    console.print(f"data directory: {settings.data_dir}")
    try:
        report = run_ingest(settings, manifest)
    except ManifestError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
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
    _serve(_settings(host=host, port=port, workers=workers, data_dir=data_dir, database_url=database_url))


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
    from tierserve.demo.collection import DemoPlan, build_demo_sources, example_urls

    settings = _settings(host=host, port=port, workers=workers, data_dir=data_dir, database_url=database_url)
    console.print(f"data directory: {settings.data_dir}")
    plan = DemoPlan(settings.data_dir / "demo-sources", scale)
    with console.status("generating demo sources (first run only)") as status:
        manifest = build_demo_sources(plan, on_file=lambda name: status.update(f"generated {name}"))
    report = run_ingest(settings, manifest)
    if not report.ok:
        raise typer.Exit(1)
    base = f"http://{settings.host}:{settings.port}"
    console.print("try:\n  " + "\n  ".join(example_urls(base)), soft_wrap=True)
    if serve_after:
        _serve(settings)


@app.command()
def migrate(database_url: DatabaseUrl = None, data_dir: DataDir = None) -> None:
    """Create or upgrade the database schema to the newest revision."""
    settings = _settings(data_dir=data_dir, database_url=database_url)
    database = Database(settings.resolved_database_url)
    database.migrate()
    database.dispose()
    console.print(f"schema is up to date: {settings.resolved_database_url}")


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
