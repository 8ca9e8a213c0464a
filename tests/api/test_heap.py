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


#: In a fresh interpreter: a renderer with its default `on_quiet` runs one render that fills 100 MB of
#: heap on its render thread and frees all but the last block; VmRSS in KiB is printed right after the
#: answer and again once the renderer has been quiet for longer than `quiet_seconds` (0.2 s).
_QUIET_RENDERER = textwrap.dedent(
    """
    import asyncio
    from pathlib import Path
    from tierserve.api.streaming import Renderer

    def rss_kib():
        line = next(l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith("VmRSS:"))
        return int(line.split()[1])

    pinned = []

    def render(sink):
        blocks = [bytes(2000) for _ in range(50_000)]
        pinned.append(blocks[-1])
        del blocks
        sink(b"x")

    async def main():
        renderer = Renderer(1, 1, 5.0, 30.0, quiet_seconds=0.2)
        await renderer.respond(render, "image/jpeg", {})
        before = rss_kib()
        await asyncio.sleep(1.0)
        print(before, rss_kib())
        renderer.close()

    asyncio.run(main())
    """
)


@pytest.mark.skipif(_TRIM is None, reason="the C library has no malloc_trim (not glibc)")
def test_a_renderer_gone_quiet_returns_the_heap_its_renders_freed() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _QUIET_RENDERER], capture_output=True, text=True, check=True, timeout=60
    )
    before, after = result.stdout.split()
    assert int(before) - int(after) > 80 * 1024, result.stdout
