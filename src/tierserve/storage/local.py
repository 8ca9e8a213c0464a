"""A store in a local directory: files are written under a scratch name, fsynced, then renamed."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tierserve.errors import StorageError
from tierserve.storage.base import validate_key


class LocalStore:
    """Files under `root`; scratch files under `root/.scratch` (same filesystem, so rename is atomic)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._scratch = root / ".scratch"

    def locate(self, key: str) -> str:
        return str(self.root / validate_key(key))

    def version(self, key: str) -> str:
        try:
            stat = (self.root / validate_key(key)).stat()
        except FileNotFoundError as exc:
            raise StorageError("stored pyramid is missing") from exc
        return f"{stat.st_ino:x}-{stat.st_mtime_ns:x}-{stat.st_size:x}"

    def scratch_dir(self) -> Path:
        self._scratch.mkdir(parents=True, exist_ok=True)
        return self._scratch

    @contextmanager
    def publish(self, key: str) -> Iterator[Path]:
        final = self.root / validate_key(key)
        scratch = self.scratch_dir() / f"{uuid.uuid4().hex}.part"
        try:
            yield scratch
            _fsync(scratch)
            final.parent.mkdir(parents=True, exist_ok=True)
            scratch.replace(final)
            _fsync(final.parent)
        finally:
            scratch.unlink(missing_ok=True)

    def clean_scratch(self) -> int:
        if not self._scratch.exists():
            return 0
        entries = list(self._scratch.iterdir())
        for entry in entries:
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
        return len(entries)


def _fsync(path: Path) -> None:
    """Flush a file's or a directory's entry to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
