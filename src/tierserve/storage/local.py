"""A store in a local directory: files are written under a scratch name, fsynced, then renamed."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from tierserve.errors import StorageError
from tierserve.metrics import STORE_READ_BYTES, STORE_READ_SECONDS
from tierserve.storage.base import ByteRange, ObjectInfo, Publication, validate_key

#: Scratch of ingest runs lives here, inside the store root, so that publishing is a rename.
SCRATCH = ".scratch"
#: The metrics of reads by `read_ranges` (libvips reads large outputs from the file itself, uncounted).
_READ_SECONDS = STORE_READ_SECONDS.labels("file")
_READ_BYTES = STORE_READ_BYTES.labels("file")


class LocalFile:
    """A stored file read with `pread`; native libraries may open `local_path` directly."""

    def __init__(self, path: Path, info: ObjectInfo) -> None:
        self._path = path
        self._info = info

    @property
    def info(self) -> ObjectInfo:
        return self._info

    @property
    def local_path(self) -> str:
        return str(self._path)

    def read_ranges(self, ranges: Sequence[ByteRange]) -> list[bytes]:
        started = time.perf_counter()
        try:
            chunks = self._pread(ranges)
        finally:
            _READ_SECONDS.observe(time.perf_counter() - started)
        _READ_BYTES.inc(sum(map(len, chunks)))
        if any(len(chunk) != length for chunk, (_, length) in zip(chunks, ranges, strict=True)):
            raise StorageError("stored pyramid is truncated")
        return chunks

    def _pread(self, ranges: Sequence[ByteRange]) -> list[bytes]:
        try:
            fd = os.open(self._path, os.O_RDONLY)
        except FileNotFoundError as exc:
            raise StorageError("stored pyramid is missing") from exc
        try:
            return [os.pread(fd, length, offset) for offset, length in ranges]
        finally:
            os.close(fd)


class LocalStore:
    """Files under `root`; ingest scratch under `root/.scratch` (same filesystem, so publishing is a rename).

    The version of a file is its inode, modification time and size: it changes whenever the file is
    replaced, and costs one `stat` (at ingest; requests read it from the image record).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.name = f"file://{root}"
        #: key -> its path, checked once (`validate_key`): every request opens its file.
        self._validated_path = lru_cache(maxsize=4096)(self._path_of)

    def open(self, info: ObjectInfo) -> LocalFile:
        return LocalFile(self._validated_path(info.key), info)

    def _path_of(self, key: str) -> Path:
        return self.root / validate_key(key)

    def stat(self, key: str) -> ObjectInfo:
        return _info(self._validated_path(key), key)

    def scratch_root(self) -> Path:
        folder = self.root / SCRATCH
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    @contextmanager
    def publish(self, key: str, scratch: Path) -> Iterator[Publication]:
        final = self._validated_path(key)
        publication = Publication(key, scratch / f"{uuid.uuid4().hex}.part")
        try:
            yield publication
            _fsync(publication.path)
            final.parent.mkdir(parents=True, exist_ok=True)
            publication.path.replace(final)
            _fsync(final.parent)
            publication.info = self.stat(key)
        finally:
            publication.path.unlink(missing_ok=True)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        for path in sorted(self.root.rglob("*")):
            key = path.relative_to(self.root).as_posix()
            if path.is_file() and not key.startswith(f"{SCRATCH}/") and key.startswith(prefix):
                yield self.stat(key)

    def delete(self, key: str) -> None:
        self._validated_path(key).unlink(missing_ok=True)


def local_file(path: Path) -> LocalFile:
    """Any local TIFF opened like a stored file (tools, benchmarks and tests read files outside a store)."""
    return LocalFile(path, _info(path, path.name))


def _info(path: Path, key: str) -> ObjectInfo:
    try:
        stat = path.stat()
    except FileNotFoundError as exc:
        raise StorageError("stored pyramid is missing") from exc
    version = f"{stat.st_ino:x}-{stat.st_mtime_ns:x}-{stat.st_size:x}"
    return ObjectInfo(key, stat.st_size, version, stat.st_mtime)


def _fsync(path: Path) -> None:
    """Flush a file's or a directory's entry to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
