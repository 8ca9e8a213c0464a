"""The `tierserve` command as a user runs it: real processes, real ports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest

from tests.conftest import Collection, free_port
from tests.images import decode_jpeg

TIERSERVE = [sys.executable, "-m", "tierserve"]


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
    assert "section_data_sets.0.images.0.source: Field required" in result.stderr


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
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx2.get(f"http://127.0.0.1:{port}/healthz", timeout=2).raise_for_status()
                break
            except httpx2.TransportError:
                if time.monotonic() > deadline or served.process.poll() is not None:
                    pytest.fail("server did not start")
                time.sleep(0.2)
        yield served
    finally:
        served.process.terminate()
        served.stderr = served.process.communicate(timeout=30)[1]


def test_serve_with_workers_reads_environment_settings(collection: Collection) -> None:
    with serving(collection, "--workers", "2") as served:
        url = f"http://127.0.0.1:{served.port}/api/v2/section_image_download/2001?downsample=2"
        assert decode_jpeg(httpx2.get(url, timeout=30).content).shape == (275, 375, 3)
    assert f"data directory: {collection.settings.data_dir}" in served.stderr
