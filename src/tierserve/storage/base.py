"""The storage seam: stored files are immutable objects read by byte ranges, written once by publishing.

A store has two sides. The read side (`StoreReader`) opens a stored file as a `StoredFile` without
any I/O: the size and version come from the image record, which ingest wrote when it published the
file, so serving a request issues no HEAD and no LIST. The write side (`StoreWriter`) publishes a
local scratch file under a key atomically (a rename, or a single completed upload) and reports the
version it got; it also lists and deletes keys for `tierserve gc`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

_KEY = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")

#: One byte range of a stored file: (offset, length) in bytes.
ByteRange = tuple[int, int]


def validate_key(key: str) -> str:
    """Keys are relative, '/'-separated names of [A-Za-z0-9_.-]; no empty, '.' or '..' parts."""
    if not _KEY.fullmatch(key) or any(part in {".", ".."} for part in key.split("/")):
        raise ValueError(f"invalid store key {key!r}")
    return key


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What a store knows of a stored file without reading it: key, size in bytes, version token.

    `modified` (seconds since the epoch) is filled by `stat` and `list` for `tierserve gc`; it is not
    part of a file's identity, so a recorded info equals a listed one.
    """

    key: str
    size: int
    version: str
    modified: float | None = field(default=None, compare=False)


class StoredFile(Protocol):
    """One stored file opened for random access. Creating one does no I/O; reads do.

    `local_path` is a path native libraries may open directly (the local store), None for remote
    stores. Reads raise `StorageError`: "stored pyramid is missing", a short read ("truncated"), or
    `StoreUnavailable` when the store does not answer in time.
    """

    @property
    def info(self) -> ObjectInfo: ...

    @property
    def local_path(self) -> str | None: ...

    def read_ranges(self, ranges: Sequence[ByteRange]) -> list[bytes]:
        """The bytes of each range, in order; neighbouring ranges are fetched together and distant
        ones concurrently where the store can."""
        ...


class StoreReader(Protocol):
    """The read side of a store."""

    #: Names the store in messages, without credentials (e.g. "s3://bucket/prefix").
    name: str

    def open(self, info: ObjectInfo) -> StoredFile:
        """The stored file `info.key` as recorded (size and version); no I/O."""
        ...

    def stat(self, key: str) -> ObjectInfo:
        """Size and current version of `key` (one metadata request; never on a request's path).

        Raises `StorageError` ("stored pyramid is missing") when there is no file at `key`.
        """
        ...


class Publication:
    """A file being published: write `path`; after the `publish` block `info` holds what was stored."""

    def __init__(self, key: str, path: Path) -> None:
        self.key = key
        self.path = path
        self.info: ObjectInfo | None = None


class StoreWriter(Protocol):
    """The write side of a store: publishing, scratch space and the listing that gc needs."""

    name: str

    def publish(self, key: str, scratch: Path) -> AbstractContextManager[Publication]:
        """A scratch file under `scratch` to write; on clean exit it becomes visible at `key` whole.

        On an exception nothing becomes visible and the scratch file is removed.
        """
        ...

    def scratch_root(self) -> Path:
        """A local folder for the scratch of ingest runs (on the store's filesystem for a local store)."""
        ...

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every stored file whose key starts with `prefix`."""
        ...

    def delete(self, key: str) -> None:
        """Remove `key`; a missing key is not an error."""
        ...


class Store(StoreReader, StoreWriter, Protocol):
    """Both sides of one store."""
