"""The storage seam: a small protocol that a local directory or an object store implements."""

from __future__ import annotations

import re
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol

_KEY = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")


def validate_key(key: str) -> str:
    """Keys are relative, '/'-separated names of [A-Za-z0-9_.-]; no empty, '.' or '..' parts."""
    if not _KEY.fullmatch(key) or any(part in {".", ".."} for part in key.split("/")):
        raise ValueError(f"invalid store key {key!r}")
    return key


class Store(Protocol):
    """Immutable named files: written once through `publish`, then read through `locate`."""

    def locate(self, key: str) -> str:
        """A location the pyramid reader can open (a local path for the local store)."""
        ...

    def version(self, key: str) -> str:
        """An opaque token that changes whenever the file at `key` is replaced (cheap: no data read).

        Called on the event loop for every image request (ETags), so it must not block: a remote store
        answers from metadata it already holds.

        Raises `StorageError` ("stored pyramid is missing") when there is no file at `key`.
        """
        ...

    def publish(self, key: str) -> AbstractContextManager[Path]:
        """A local scratch path to write; on clean exit it becomes visible at `key` atomically.

        On an exception the scratch file is removed and nothing becomes visible.
        """
        ...

    def scratch_dir(self) -> Path:
        """A local directory for temporary files of the same filesystem as the store."""
        ...

    def clean_scratch(self) -> int:
        """Remove scratch files left by an interrupted writer; returns how many were removed."""
        ...
