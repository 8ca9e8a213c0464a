"""A quiet worker gives its freed heap back to the operating system."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tierserve.api.heap import _TRIM

#: In a fresh interpreter: fill 100 MB of glibc heap with 2 KB blocks (above pymalloc's 512 bytes, below
#: the mmap threshold), free all but the last (which pins the heap top, so free() cannot shrink it),
#: then print VmRSS in KiB before and after `release_free_heap`.
_PROGRAM = textwrap.dedent(
    """
    from pathlib import Path
    from tierserve.api.heap import release_free_heap

    def rss_kib():
        line = next(l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith("VmRSS:"))
        return int(line.split()[1])

    blocks = [bytes(2000) for _ in range(50_000)]
    pin = blocks[-1]
    del blocks
    before = rss_kib()
    released = release_free_heap()
    print(before, rss_kib(), released)
    """
)


@pytest.mark.skipif(_TRIM is None, reason="the C library has no malloc_trim (not glibc)")
def test_release_free_heap_returns_freed_blocks_to_the_os() -> None:
    result = subprocess.run([sys.executable, "-c", _PROGRAM], capture_output=True, text=True, check=True, timeout=60)
    before, after, released = result.stdout.split()
    assert released == "True"
    assert int(before) - int(after) > 80 * 1024, result.stdout
