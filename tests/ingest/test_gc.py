"""`tierserve gc` on a real ingest: orphans and dead scratch listed and removed after the grace period,
recorded files never removed, missing and replaced ones reported with exit 1."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import select

from tests.ingest.test_distributed import CLI_DB, _sources
from tierserve.db.database import Database
from tierserve.db.models import ImageLayer
from tierserve.ingest import gc
from tierserve.storage import LocalStore

TIERSERVE = [sys.executable, "-m", "tierserve"]
DAY = 86_400.0


def _gc(data: Path, *options: str) -> subprocess.CompletedProcess[str]:
    command = [*TIERSERVE, "gc", "--data-dir", str(data), *options]
    env = {**os.environ, "COLUMNS": "250"}
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, env=env)


def _recorded(data: Path) -> list[str]:
    database = Database(f"sqlite:///{data / CLI_DB}")
    with database.session() as session:
        paths = sorted(session.scalars(select(ImageLayer.path)))
    database.dispose()
    return paths


def test_gc_lists_and_removes_only_what_no_row_needs(tmp_path: Path) -> None:
    manifest = _sources(tmp_path / "src", 3, (300, 200))
    data = tmp_path / "data"
    command = [*TIERSERVE, "ingest", str(manifest), "--data-dir", str(data)]
    assert subprocess.run(command, capture_output=True, timeout=120, check=False).returncode == 0
    store = LocalStore(data / "store")
    recorded = _recorded(data)
    old = time.time() - 2 * DAY
    orphan = store.root / "sub_images" / "100" / "deadbeef0000" / "primary.ome.tif"
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"left by a killed ingest")
    os.utime(orphan, (old, old))
    young = store.root / "sub_images" / "101" / "cafe00000000" / "primary.ome.tif"
    young.parent.mkdir(parents=True)
    young.write_bytes(b"a running ingest may still commit this")
    dead = store.scratch_root() / "run-20261130T000000Z-host-1-abcdef12"
    (dead / "image-100-x").mkdir(parents=True)
    (dead / "image-100-x" / "level-0.tif").write_bytes(b"x")
    for path in (dead / "image-100-x" / "level-0.tif", dead / "image-100-x", dead):
        os.utime(path, (old, old))
    (store.root / recorded[0]).unlink()  # missing
    (store.root / recorded[1]).write_bytes(b"replaced behind tierserve's back")

    listed = _gc(data)
    assert listed.returncode == 1, listed.stderr
    lines = listed.stderr.splitlines()
    assert f"published file no row names: {orphan.relative_to(store.root).as_posix()} (23 bytes, 2.0 days old)" in lines
    assert f"scratch of a dead ingest run: {dead.name} (untouched for 2.0 days)" in lines
    assert any(line.startswith(f"recorded file is missing: {recorded[0]} (image ") for line in lines)
    assert any(line.startswith(f"recorded file was replaced: {recorded[1]} (image ") for line in lines)
    assert "cafe00000000" not in listed.stderr  # younger than the grace period: a running ingest's file
    assert "2 removable (run with --delete to remove them)" in lines
    assert orphan.exists() and dead.exists()  # listing removes nothing

    removed = _gc(data, "--delete")
    assert "removed 2 orphan files and dead scratch folders" in removed.stderr
    assert not orphan.exists() and not dead.exists()
    assert young.exists() and (store.root / recorded[1]).exists()
    assert _recorded(data) == recorded


def test_collect_reports_nothing_for_a_clean_store(tmp_path: Path) -> None:
    manifest = _sources(tmp_path / "src", 2, (300, 200))
    data = tmp_path / "data"
    command = [*TIERSERVE, "ingest", str(manifest), "--data-dir", str(data)]
    assert subprocess.run(command, capture_output=True, timeout=120, check=False).returncode == 0
    database = Database(f"sqlite:///{data / CLI_DB}")
    try:
        assert gc.collect(database, LocalStore(data / "store"), grace_seconds=0) == []
    finally:
        database.dispose()
