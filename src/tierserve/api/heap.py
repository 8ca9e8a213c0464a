"""Giving a worker's freed heap back to the operating system once the worker has gone quiet.

Renders allocate tens of MiB (a 4000 x 2500 tier is 30 MB of RGB), on several threads, each with its
own glibc arena. glibc keeps freed arena memory mapped for reuse, so after a burst of large renders a
worker kept 320 MiB resident for good (`bench.compare`, before workload 5), though it needed about
115 MiB idle. `malloc_trim` returns those free pages; it walks every arena, so it runs only after a
quiet spell, never between the requests of a busy worker.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable

#: Seconds without any render before a worker gives its free heap back.
QUIET_SECONDS = 1.0


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's `malloc_trim`, or None where the C library has none (musl, macOS)."""
    try:
        trim: Callable[[int], int] = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


_TRIM = _malloc_trim()


def release_free_heap() -> bool:
    """Return free heap pages of every arena to the OS; False if nothing could be returned or the C
    library cannot do it. Blocks for up to a few milliseconds: call it off the event loop."""
    return _TRIM is not None and _TRIM(0) == 1
