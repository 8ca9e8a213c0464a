"""Scratch space of one ingest run: its own folder, removed when the run ends.

Folders are named `run-<UTC time>-<host>-<pid>-<random>`, so concurrent runs never share one and
`tierserve gc` can tell a dead run's leftovers (older than a grace period) from a live run's.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

RUN_PREFIX = "run-"


@contextmanager
def run_scratch(root: Path) -> Iterator[Path]:
    """A new, empty folder under `root` for one run's scratch files; removed with its content on exit."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    host = "".join(c if c.isalnum() else "_" for c in socket.gethostname())[:32]
    folder = root / f"{RUN_PREFIX}{stamp}-{host}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    folder.mkdir(parents=True)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
