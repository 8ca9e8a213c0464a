"""Carrying encoder output from a render thread to the event loop with bounded buffering.

The render runs in a worker thread and writes into a `ChunkChannel`; the response reads from it.
Small outputs (up to `HEAD_BYTES`) are answered with a Content-Length and a real error status if
the render fails; larger ones start streaming after the first `HEAD_BYTES`, so a whole
full-resolution image begins to leave within moments and is never held in memory whole.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import Executor

from starlette.responses import Response, StreamingResponse

from tierserve.core.encode import EncodeAborted, Sink

#: Bytes coalesced into one chunk before it is handed to the event loop.
CHUNK_BYTES = 256 * 1024
#: Chunks buffered between the render thread and a slow client.
MAX_PENDING_CHUNKS = 8
#: Output up to this size is sent with a Content-Length after the render finished.
HEAD_BYTES = 1024 * 1024

_END = object()


class ChunkChannel:
    """A bounded queue of byte chunks from one producer thread to one asyncio consumer."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._space = threading.Semaphore(MAX_PENDING_CHUNKS)
        self._buffer = bytearray()
        self._closed = threading.Event()

    # producer side (render thread)
    def write(self, data: bytes) -> bool:
        """Append encoder output; False once the consumer has gone away."""
        self._buffer += data
        if len(self._buffer) >= CHUNK_BYTES:
            return self._push(self._flush())
        return not self._closed.is_set()

    def finish(self, error: BaseException | None = None) -> None:
        """Flush what is left and signal the end (or the error) to the consumer."""
        if self._buffer and error is None:
            self._push(self._flush())
        self._deliver(error if error is not None else _END)

    def _flush(self) -> bytes:
        chunk = bytes(self._buffer)
        self._buffer.clear()
        return chunk

    def _push(self, chunk: bytes) -> bool:
        while not self._space.acquire(timeout=0.25):
            if self._closed.is_set():
                return False
        if self._closed.is_set():
            return False
        return self._deliver(chunk)

    def _deliver(self, item: object) -> bool:
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            self._closed.set()
            return False
        return True

    # consumer side (event loop)
    async def get(self) -> bytes | None:
        """The next chunk; None at the end; re-raises the producer's error."""
        item = await self._queue.get()
        if item is _END:
            return None
        if isinstance(item, BaseException):
            raise item
        self._space.release()
        assert isinstance(item, bytes)
        return item

    def close(self) -> None:
        """Tell the producer to stop (the client went away or the response ended)."""
        self._closed.set()


async def stream_render(
    render: Callable[[Sink], None], executor: Executor, media_type: str, headers: Mapping[str, str]
) -> Response:
    """Run `render` in `executor` and answer with its output, buffered or streamed by size."""
    loop = asyncio.get_running_loop()
    channel = ChunkChannel(loop)

    def work() -> None:
        try:
            render(channel.write)
        except EncodeAborted:
            channel.finish()
        except BaseException as exc:  # delivered to the consumer, which re-raises it
            channel.finish(exc)
        else:
            channel.finish()

    loop.run_in_executor(executor, work)
    head: list[bytes] = []
    size = 0
    try:
        while size < HEAD_BYTES:
            chunk = await channel.get()
            if chunk is None:
                channel.close()
                return Response(b"".join(head), media_type=media_type, headers=dict(headers))
            head.append(chunk)
            size += len(chunk)
    except BaseException:
        channel.close()
        raise

    async def body() -> AsyncIterator[bytes]:
        try:
            for chunk in head:
                yield chunk
            head.clear()
            while (rest := await channel.get()) is not None:
                yield rest
        finally:
            channel.close()

    return StreamingResponse(body(), media_type=media_type, headers=dict(headers))
