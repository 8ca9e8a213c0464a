"""`tierserve gc`: what ingest left behind in the store, and stored files that no longer match their rows.

Published files that no row names (an ingest killed between publishing and committing, a lost Dask
attempt) and the scratch folders of dead ingest runs are removable once they are older than the
grace period: a running ingest commits its files within it, so nothing it may still commit is ever
touched. Files that rows name are never removed; one that is missing, or whose size or version
differs from what ingest recorded (replaced behind tierserve's back), is reported.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from sqlalchemy import select

from tierserve.db.database import Database
from tierserve.db.models import ImageLayer
from tierserve.errors import StorageError
from tierserve.storage import Store
from tierserve.storage.scratch import RUN_PREFIX

#: Where ingest publishes pyramids (`<prefix><image id>/<attempt>/<layer>.ome.tif`).
PYRAMID_PREFIX = "sub_images/"


class Kind(Enum):
    ORPHAN = "published file no row names"
    DEAD_SCRATCH = "scratch of a dead ingest run"
    MISSING = "recorded file is missing"
    REPLACED = "recorded file was replaced"

    @property
    def removable(self) -> bool:
        return self in (Kind.ORPHAN, Kind.DEAD_SCRATCH)


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing gc found: what kind, which key or folder, and a detail (age or the mismatch)."""

    kind: Kind
    name: str
    detail: str


def collect(database: Database, store: Store, grace_seconds: float, now: float | None = None) -> list[Finding]:
    """Everything worth an operator's look, oldest problems first within each kind."""
    now = time.time() if now is None else now
    with database.session() as session:
        recorded = {row.path: row for row in session.scalars(select(ImageLayer))}
    findings = [*_orphans(store, set(recorded), grace_seconds, now), *_dead_scratch(store, grace_seconds, now)]
    for path, layer in sorted(recorded.items()):
        try:
            info = store.stat(path)
        except StorageError:
            findings.append(Finding(Kind.MISSING, path, f"image {layer.sub_image_id}, {layer.kind} layer"))
            continue
        if info.size != layer.byte_size or (layer.version and info.version != layer.version):
            detail = f"image {layer.sub_image_id}: recorded {layer.byte_size} bytes version {layer.version!r}, "
            findings.append(Finding(Kind.REPLACED, path, detail + f"stored {info.size} bytes version {info.version!r}"))
    return findings


def remove(store: Store, findings: list[Finding]) -> int:
    """Remove the removable findings; returns how many were removed."""
    removed = 0
    for finding in findings:
        if finding.kind is Kind.ORPHAN:
            store.delete(finding.name)
        elif finding.kind is Kind.DEAD_SCRATCH:
            shutil.rmtree(store.scratch_root() / finding.name, ignore_errors=True)
        else:
            continue
        removed += 1
    return removed


def _orphans(store: Store, recorded: set[str], grace_seconds: float, now: float) -> list[Finding]:
    found = []
    for info in store.list(PYRAMID_PREFIX):
        if info.key in recorded or info.modified is None or now - info.modified < grace_seconds:
            continue
        found.append(Finding(Kind.ORPHAN, info.key, f"{info.size} bytes, {_age(now - info.modified)} old"))
    return found


def _dead_scratch(store: Store, grace_seconds: float, now: float) -> list[Finding]:
    found = []
    for folder in sorted(store.scratch_root().glob(f"{RUN_PREFIX}*")):
        age = now - _newest_mtime(folder)
        if age >= grace_seconds:
            found.append(Finding(Kind.DEAD_SCRATCH, folder.name, f"untouched for {_age(age)}"))
    return found


def _newest_mtime(folder: Path) -> float:
    """The newest modification time in `folder` (a live run keeps writing into its scratch)."""
    times = [folder.stat().st_mtime]
    times += [path.stat().st_mtime for path in folder.rglob("*") if path.exists()]
    return max(times)


def _age(seconds: float) -> str:
    hours = seconds / 3600
    return f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.1f} hours"
