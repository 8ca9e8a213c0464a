"""A store in memory: the test double of the storage seam, read as a remote store is (no local path)."""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from tierserve.errors import StorageError
from tierserve.storage.base import ByteRange, ObjectInfo, Publication, validate_key


class MemoryFile:
    """A stored file whose bytes are held by a `MemoryStore`."""

    def __init__(self, store: MemoryStore, info: ObjectInfo) -> None:
        self._store = store
        self._info = info

    @property
    def info(self) -> ObjectInfo:
        return self._info

    @property
    def local_path(self) -> None:
        return None

    def read_ranges(self, ranges: Sequence[ByteRange]) -> list[bytes]:
        return self._store.read(self._info.key, ranges)


class MemoryStore:
    """Objects in a dict; versions are content hashes. `reads` counts `read` calls (one per batch of ranges)."""

    def __init__(self, scratch: Path) -> None:
        self.name = "memory://"
        self._scratch = scratch
        self._objects: dict[str, bytes] = {}
        self._modified: dict[str, float] = {}
        self._lock = threading.Lock()
        self.reads = 0

    def open(self, info: ObjectInfo) -> MemoryFile:
        return MemoryFile(self, info)

    def read(self, key: str, ranges: Sequence[ByteRange]) -> list[bytes]:
        """The bytes of `ranges` of `key`, as a remote store's ranged GETs would return them."""
        with self._lock:
            self.reads += 1
            data = self._objects.get(key)
        if data is None:
            raise StorageError("stored pyramid is missing")
        chunks = [data[offset : offset + length] for offset, length in ranges]
        if any(len(chunk) != length for chunk, (_, length) in zip(chunks, ranges, strict=True)):
            raise StorageError("stored pyramid is truncated")
        return chunks

    def stat(self, key: str) -> ObjectInfo:
        with self._lock:
            data = self._objects.get(validate_key(key))
        if data is None:
            raise StorageError("stored pyramid is missing")
        version = hashlib.blake2b(data, digest_size=8).hexdigest()
        return ObjectInfo(key, len(data), version, self._modified.get(key))

    def scratch_root(self) -> Path:
        self._scratch.mkdir(parents=True, exist_ok=True)
        return self._scratch

    @contextmanager
    def publish(self, key: str, scratch: Path) -> Iterator[Publication]:
        publication = Publication(validate_key(key), scratch / f"{uuid.uuid4().hex}.part")
        try:
            yield publication
            data = publication.path.read_bytes()
            with self._lock:
                self._objects[key] = data
                self._modified[key] = time.time()
            publication.info = self.stat(key)
        finally:
            publication.path.unlink(missing_ok=True)

    def put(self, key: str, data: bytes) -> ObjectInfo:
        """Store `data` at `key` directly (tests replace objects behind the server's back with it)."""
        with self._lock:
            self._objects[validate_key(key)] = data
            self._modified[key] = time.time()
        return self.stat(key)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        with self._lock:
            keys = sorted(key for key in self._objects if key.startswith(prefix))
        for key in keys:
            yield self.stat(key)

    def delete(self, key: str) -> None:
        with self._lock:
            self._objects.pop(validate_key(key), None)
