"""Ingest on a real Dask cluster: a LocalCluster of worker processes, and a separate scheduler with two
workers of which one is killed mid-ingest."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import pyvips
import yaml

from tests.conftest import free_port
from tests.ingest.test_pipeline import rows, stored_level0

TIERSERVE = [sys.executable, "-m", "tierserve"]
#: The database file the CLI keeps in its data directory.
CLI_DB = "tierserve.db"


def _sources(directory: Path, count: int, size: tuple[int, int] = (1600, 1200)) -> Path:
    """`count` RGB tiled TIFFs of random pixels and a manifest of them; returns the manifest."""
    directory.mkdir(parents=True, exist_ok=True)
    images = []
    for i in range(count):
        pixels = np.random.default_rng(i).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
        image = pyvips.Image.new_from_array(pixels).copy(interpretation="srgb")
        image.tiffsave(str(directory / f"s{i}.tif"), tile=True, compression="lzw")
        images.append({"id": 100 + i, "section_number": i, "source": f"s{i}.tif"})
    manifest = directory / "manifest.yaml"
    manifest.write_text(yaml.safe_dump({"section_data_sets": [{"id": 1, "images": images}]}))
    return manifest


def _ingest(manifest: Path, data: Path, *options: str) -> subprocess.CompletedProcess[str]:
    command = [*TIERSERVE, "ingest", str(manifest), "--data-dir", str(data), *options]
    env = {**os.environ, "COLUMNS": "250"}
    return subprocess.run(command, capture_output=True, text=True, timeout=300, check=False, env=env)


def test_a_local_dask_cluster_builds_what_one_process_builds(tmp_path: Path) -> None:
    manifest = _sources(tmp_path / "src", 3)
    (tmp_path / "src" / "broken.tif").write_bytes((tmp_path / "src" / "s0.tif").read_bytes()[:30_000])
    data = yaml.safe_load(manifest.read_text())
    data["section_data_sets"][0]["images"].append({"id": 199, "section_number": 9, "source": "broken.tif"})
    manifest.write_text(yaml.safe_dump(data))
    alone = _ingest(manifest, tmp_path / "alone")
    cluster = _ingest(manifest, tmp_path / "cluster", "--dask-workers", "2")
    assert (alone.returncode, cluster.returncode) == (1, 1), cluster.stderr
    assert "ingested 3, already present 0, failed 1" in cluster.stderr
    assert cluster.stderr.count("broken.tif is damaged or truncated") == 1
    assert rows(tmp_path / "cluster", CLI_DB) == rows(tmp_path / "alone", CLI_DB) == [100, 101, 102]
    for image_id in (100, 101, 102):
        assert np.array_equal(
            stored_level0(tmp_path / "cluster", image_id, db=CLI_DB),
            stored_level0(tmp_path / "alone", image_id, db=CLI_DB),
        )
    again = _ingest(manifest, tmp_path / "cluster", "--dask-workers", "1")
    assert "ingested 0, already present 3, failed 1" in again.stderr


def test_dask_options_exclude_each_other(tmp_path: Path) -> None:
    result = _ingest(tmp_path / "m.yaml", tmp_path / "data", "--dask-workers", "2", "--scheduler", "tcp://x:1")
    assert result.returncode == 2
    assert "give --dask-workers or --scheduler, not both" in result.stderr


def test_without_dask_the_options_name_the_extra(tmp_path: Path) -> None:
    manifest = _sources(tmp_path / "src", 1, (64, 64))
    blocked = (
        "import sys; sys.modules['distributed'] = None; "  # as if the extra were not installed
        "from tierserve.cli import main; sys.argv[0] = 'tierserve'; main()"
    )
    command = [
        sys.executable,
        "-c",
        blocked,
        "ingest",
        str(manifest),
        "--data-dir",
        str(tmp_path / "d"),
        "--dask-workers",
        "2",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert "pip install 'tierserve[dask]'" in result.stderr


@pytest.fixture
def scheduler(tmp_path: Path) -> Iterator[tuple[str, list[subprocess.Popen[bytes]]]]:
    """A `dask scheduler` and two `dask worker` processes (no nanny: a killed worker stays dead)."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "distributed.cli.dask_scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--dashboard-address",
                ":0",
                "--no-show",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=tmp_path,
        )
    ]
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "distributed.cli.dask_worker",
                address,
                "--nthreads",
                "1",
                "--no-nanny",
                "--no-dashboard",
                "--local-directory",
                str(tmp_path / f"worker{i}"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=tmp_path,
        )
        for i in range(2)
    ]
    try:
        yield address, workers
    finally:
        for process in [*workers, *processes]:
            process.kill()
            process.wait(timeout=30)


def test_a_worker_killed_mid_ingest_has_its_image_built_elsewhere(
    tmp_path: Path, scheduler: tuple[str, list[subprocess.Popen[bytes]]]
) -> None:
    address, workers = scheduler
    manifest = _sources(tmp_path / "src", 6, (2400, 1800))
    data = tmp_path / "data"
    command = [*TIERSERVE, "ingest", str(manifest), "--data-dir", str(data), "--scheduler", address]
    driver = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env={**os.environ, "COLUMNS": "200"})
    assert driver.stderr is not None
    deadline = time.monotonic() + 120
    for line in driver.stderr:  # kill one worker once the first image is committed: the other images are under way
        if line.startswith("ingested 1/6") or time.monotonic() > deadline:
            break
    workers[0].send_signal(signal.SIGKILL)
    rest = driver.stderr.read()
    driver.stderr.close()
    assert driver.wait(timeout=240) == 0, rest
    assert "ingested 6, already present 0, failed 0" in rest
    assert rows(data, CLI_DB) == [100 + i for i in range(6)]
    assert workers[0].wait(timeout=10) == -signal.SIGKILL
