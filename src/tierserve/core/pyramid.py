"""Reading stored pyramids: one tiled OME-TIFF per layer, level n in SubIFD n-1 (level 0 is page 0).

`PyramidFile` opens level images lazily and keeps them; `PyramidCache` keeps a bounded number of
open files per process and reopens a file whose inode, size or mtime changed (a re-ingest).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import pyvips

from tierserve.errors import StorageError


@dataclass(frozen=True, slots=True)
class FileIdentity:
    """What identifies one version of a file on disk."""

    inode: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: str) -> FileIdentity:
        try:
            st = Path(path).stat()
        except OSError as exc:
            raise StorageError(f"stored pyramid is missing ({exc.strerror})") from exc
        return cls(st.st_ino, st.st_size, st.st_mtime_ns)


class PyramidFile:
    """An open pyramidal TIFF. Level images are immutable and safe to share between threads."""

    def __init__(self, path: str, identity: FileIdentity) -> None:
        self.path = path
        self.identity = identity
        self._levels: dict[int, pyvips.Image] = {}
        self._lock = threading.Lock()

    def level(self, n: int) -> pyvips.Image:
        """Level `n` (0 = full resolution) as a random-access libvips image."""
        with self._lock:
            image = self._levels.get(n)
            if image is None:
                try:
                    image = pyvips.Image.tiffload(self.path, subifd=n - 1, access="random", fail_on="warning")
                except pyvips.Error as exc:
                    raise StorageError(f"stored pyramid level {n} cannot be opened") from exc
                self._levels[n] = image
            return image


class PyramidCache:
    """A bounded LRU of open `PyramidFile`s, shared by the threads of one process."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._files: OrderedDict[str, PyramidFile] = OrderedDict()
        self._lock = threading.Lock()

    def open(self, path: str) -> PyramidFile:
        """The open file at `path`, reopened if the file on disk changed since it was opened."""
        identity = FileIdentity.of(path)
        with self._lock:
            cached = self._files.get(path)
            if cached is not None and cached.identity == identity:
                self._files.move_to_end(path)
                return cached
        opened = PyramidFile(path, identity)
        with self._lock:
            self._files[path] = opened
            self._files.move_to_end(path)
            while len(self._files) > self.capacity:
                self._files.popitem(last=False)
        return opened

    def clear(self) -> None:
        with self._lock:
            self._files.clear()
