"""The `tierserve` command as a user runs it: real processes, real ports."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import httpx2
import pytest
import pyvips
from rich.console import Console
from rich.progress import Progress

from tests.conftest import TIERSERVE, Collection, free_port, wait_until_healthy
from tests.images import decode_jpeg
from tierserve.cli import _ProgressObserver
from tierserve.settings import Settings, mask_url


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TIERSERVE, *args], capture_output=True, text=True, timeout=300, env=env, check=False)


def test_manifest_schema_command_prints_the_schema() -> None:
    result = run("manifest-schema")
    assert result.returncode == 0
    assert json.loads(result.stdout)["title"] == "tierserve ingest manifest"


def test_invalid_manifest_exits_2_with_the_problem(tmp_path: Path) -> None:
    manifest = tmp_path / "m.yaml"
    manifest.write_text("section_data_sets: [{id: 1, images: [{id: 2, section_number: 1}]}]")
    result = run("ingest", str(manifest), "--data-dir", str(tmp_path / "data"))
    assert result.returncode == 2
    assert "  - section_data_sets[0] (id 1).images[0] (id 2).source: required" in result.stderr


def test_failed_entries_exit_1_and_are_listed(tmp_path: Path) -> None:
    manifest = tmp_path / "m.yaml"
    manifest.write_text("section_data_sets: [{id: 1, images: [{id: 2, section_number: 1, source: nope.tif}]}]")
    result = run("ingest", str(manifest), "--data-dir", str(tmp_path / "data"))
    assert result.returncode == 1
    assert "failed 1" in result.stderr
    assert "nope.tif does not exist" in " ".join(result.stderr.split())


@dataclass
class Served:
    """A running `tierserve serve`: its process, its port, and its stderr once it has stopped."""

    process: subprocess.Popen[str]
    port: int
    stderr: str = ""


@contextmanager
def serving(collection: Collection, *args: str) -> Iterator[Served]:
    """`tierserve serve ARGS` on a free port, yielded once /healthz answers; stopped on exit."""
    port = free_port()
    env = {**os.environ, "TIERSERVE_DATA_DIR": str(collection.settings.data_dir), "TIERSERVE_PORT": str(port)}
    env["TIERSERVE_DATABASE_URL"] = collection.settings.resolved_database_url
    served = Served(subprocess.Popen([*TIERSERVE, "serve", *args], env=env, stderr=subprocess.PIPE, text=True), port)
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}", served.process)
        yield served
    finally:
        served.process.terminate()
        served.stderr = served.process.communicate(timeout=30)[1]


def test_serve_with_workers_reads_environment_settings(collection: Collection) -> None:
    with serving(collection, "--workers", "2") as served:
        url = f"http://127.0.0.1:{served.port}/api/v2/section_image_download/2001?downsample=2"
        assert decode_jpeg(httpx2.get(url, timeout=30).content).shape == (275, 375, 3)
    assert f"data directory: {collection.settings.data_dir}" in served.stderr


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single line a wrong setting prints (exit 2, no traceback)."""
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def environment(tmp_path: Path, **variables: str) -> dict[str, str]:
    """This environment without TIERSERVE_* variables, with the data directory in `tmp_path` and `variables`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("TIERSERVE_")}
    return {**env, "TIERSERVE_DATA_DIR": str(tmp_path / "data"), **variables}


@pytest.mark.parametrize(
    ("command", "variable", "value", "expected"),
    [
        ("serve", "TIERSERVE_DATABASE_URL", "garbage", "error: TIERSERVE_DATABASE_URL=garbage: not a database URL"),
        ("serve", "TIERSERVE_PORT", "abc", "error: TIERSERVE_PORT=abc: input should be a valid integer"),
        ("migrate", "TIERSERVE_WORKERS", "0", "error: TIERSERVE_WORKERS=0: input should be greater than or equal"),
        ("demo", "TIERSERVE_CORS_ORIGINS", "[bad", "error: TIERSERVE_CORS_ORIGINS='[bad': expected a JSON list"),
        ("ingest", "TIERSERVE_DATABASE_URL", "nosuch://x", "error: TIERSERVE_DATABASE_URL=nosuch://x: unknown"),
    ],
)
def test_a_wrong_setting_stops_every_command_with_one_line(
    tmp_path: Path, command: str, variable: str, value: str, expected: str
) -> None:
    manifest = tmp_path / "m.yaml"
    manifest.write_text("section_data_sets: []")
    args = [command, str(manifest)] if command == "ingest" else [command]
    line = one_error_line(run(*args, env=environment(tmp_path, **{variable: value})))
    assert line.startswith(expected), line
    assert not (tmp_path / "data" / "demo-sources").exists()


def test_a_sqlite_file_in_a_missing_folder_is_refused_and_not_created(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'missing' / 'dir' / 'x.db'}"
    line = one_error_line(run("migrate", "--database-url", url, env=environment(tmp_path)))
    assert line == f"error: --database-url={url}: the folder {tmp_path / 'missing' / 'dir'} does not exist " + (
        "(create it, or choose another file)"
    )
    assert not (tmp_path / "missing").exists()


def test_postgres_without_its_driver_says_which_extra_to_install(tmp_path: Path) -> None:
    """The driver is hidden the way an install without the extra lacks it: `import psycopg` fails."""
    hide = "import sys; sys.modules['psycopg'] = None; from tierserve.cli import main; main()"
    url = "postgresql://tierserve:secret@127.0.0.1/tierserve"
    result = subprocess.run(
        [sys.executable, "-c", hide, "migrate"],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment(tmp_path, TIERSERVE_DATABASE_URL=url),
        check=False,
    )
    assert one_error_line(result) == (
        "error: TIERSERVE_DATABASE_URL='postgresql://tierserve:***@127.0.0.1/tierserve': "
        "the PostgreSQL driver (psycopg) is not installed: pip install 'tierserve[postgres]'"
    )


def test_an_unreachable_database_is_one_line_with_the_drivers_reason(tmp_path: Path) -> None:
    url = f"postgresql+psycopg://tierserve:secret@127.0.0.1:{free_port()}/tierserve?connect_timeout=5"
    line = one_error_line(run("migrate", env=environment(tmp_path, TIERSERVE_DATABASE_URL=url)))
    assert line.startswith("error: TIERSERVE_DATABASE_URL='postgresql+psycopg://tierserve:***@127.0.0.1:"), line
    assert "cannot reach the database: connection failed:" in line and "Connection refused" in line
    assert "secret" not in line


def test_serve_says_what_it_serves(collection: Collection) -> None:
    with serving(collection) as served:
        viewer = httpx2.get(f"http://127.0.0.1:{served.port}/viewer/", timeout=30)
        assert viewer.status_code == 200 and "<title>tierserve viewer</title>" in viewer.text
    database = mask_url(collection.settings.resolved_database_url)
    store = collection.settings.resolved_store_url
    assert f"serving 5 images (4 section images, 1 atlas image) from {store}; database {database}\n" in served.stderr
    assert f"viewer: http://127.0.0.1:{served.port}/viewer/\n" in served.stderr


def test_serve_on_an_empty_collection_says_how_to_fill_it(collection: Collection, tmp_path: Path) -> None:
    empty = replace(collection, settings=Settings(data_dir=tmp_path / "data"))
    with serving(empty) as served:
        pass
    assert "no images ingested yet: run 'tierserve ingest MANIFEST' or 'tierserve demo'" in served.stderr


def test_ingest_off_a_terminal_prints_one_line_per_image_and_each_problem_once(tmp_path: Path) -> None:
    sources = tmp_path / "sources"
    sources.mkdir()
    pyvips.Image.black(300, 200, bands=3).pngsave(str(sources / "good.png"))
    manifest = sources / "m.yaml"
    images = "[{id: 2, section_number: 1, source: nope.tif}, {id: 3, section_number: 2, source: good.png}]"
    manifest.write_text(f"section_data_sets: [{{id: 1, images: {images}}}]")
    result = run("ingest", str(manifest), env=environment(tmp_path))
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert "failed 1/2: section_data_sets[0].images[0] (id 2)" in lines
    assert "ingested 2/2: section_data_sets[0].images[1] (id 3)" in lines
    assert result.stderr.count("nope.tif") == 1  # in the table of failed entries only
    assert "Failed entries" in result.stderr


def test_help_shows_defaults_and_variables() -> None:
    serve_help = run("serve", "--help").stdout
    assert "127.0.0.1" in serve_help and "8000" in serve_help and "TIERSERVE_PORT" in serve_help
    ingest_help = run("ingest", "--help").stdout
    assert "MANIFEST" in ingest_help and "{manifest}" not in ingest_help


def test_on_a_terminal_a_failed_image_is_a_red_bar_and_nothing_more(capsys: pytest.CaptureFixture[str]) -> None:
    screen = io.StringIO()
    with Progress(console=Console(file=screen, force_terminal=True, width=120)) as progress:
        observer = _ProgressObserver(progress, images=3)
        observer.image_started("a[0] (id 1)", tiles=4)
        observer.tiles_written("a[0] (id 1)", 2)
        observer.image_finished("a[0] (id 1)", "failed")
        observer.image_finished("a[1] (id 2)", "failed")  # failed before its pyramid was started
        observer.image_finished("a[2] (id 3)", "skipped")
    assert [task.description for task in progress.tasks] == [
        "[red]a[0] (id 1): failed",
        "[red]a[1] (id 2): failed",
        "[dim]a[2] (id 3): already present",
    ]
    assert capsys.readouterr().err == ""


def test_off_a_terminal_a_long_image_reports_how_far_it_is(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("tierserve.cli.PROGRESS_LINE_SECONDS", 0.0)
    observer = _ProgressObserver(None, images=14)
    observer.image_started("a[0] (id 1)", tiles=10)
    observer.image_started("a[1] (id 2)", tiles=20)  # images may be under way side by side
    observer.tiles_written("a[0] (id 1)", 4)
    observer.tiles_written("a[1] (id 2)", 5)
    observer.image_finished("a[0] (id 1)", "ingested")
    assert capsys.readouterr().err.splitlines() == [
        "  a[0] (id 1): 4/10 tiles written",
        "  a[1] (id 2): 5/20 tiles written",
        "ingested 1/14: a[0] (id 1)",
    ]
