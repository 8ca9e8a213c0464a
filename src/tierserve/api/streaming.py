"""Carrying encoder output from a render thread to the event loop with bounded buffering.

The render runs in a worker thread and writes into a `ChunkChannel`; the response reads from it.
Small outputs (up to `HEAD_BYTES`) are answered with a Content-Length and a real error status if
the render fails; larger ones start streaming after the first `HEAD_BYTES`, so a whole
full-resolution image begins to leave within moments and is never held in memory whole.

`Renderer` bounds the work of one worker process: at most as many renders as render threads run,
at most `max_queued` wait (each for at most `queue_timeout` seconds) and every render has a deadline;
beyond these the client gets a 503 with Retry-After that names the limit. The renders waiting and
running are the `tierserve_renders` gauge of the metrics; a deadline passed after the answer started
(the connection is cut) is counted in `tierserve_refusals` here, the other refusals where they are answered.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor

from starlette.responses import Response, StreamingResponse

from tierserve.api.heap import QUIET_SECONDS, release_free_heap
from tierserve.core.encode import EncodeAborted, Sink
from tierserve.errors import Unavailable
from tierserve.metrics import RENDERS_RUNNING, RENDERS_WAITING, count_refusal

#: Bytes coalesced into one chunk before it is handed to the event loop.
CHUNK_BYTES = 256 * 1024
#: Chunks buffered between the render thread and a slow client.
MAX_PENDING_CHUNKS = 8
#: Output up to this size is sent with a Content-Length after the render finished.
HEAD_BYTES = 1024 * 1024

_END = object()


class ChunkChannel:
    """A bounded queue of byte chunks from one producer thread to one asyncio consumer."""

    def __init__(self, loop: asyncio.AbstractEventLoop, deadline: float) -> None:
        self._loop = loop
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._space = threading.Semaphore(MAX_PENDING_CHUNKS)
        self._buffer = bytearray()
        self._closed = threading.Event()
        self.deadline = deadline
        self.timed_out = False

    # producer side (render thread)
    def write(self, data: bytes) -> bool:
        """Append encoder output; False once the consumer has gone away or the deadline passed."""
        if time.monotonic() > self.deadline:
            self.timed_out = True
            return False
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
            if self._closed.is_set() or time.monotonic() > self.deadline:
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
        """The next chunk; None at the end; re-raises the producer's error; `Unavailable` when the
        deadline passes while waiting."""
        try:
            async with asyncio.timeout_at(self._loop_deadline()):
                item = await self._queue.get()
        except TimeoutError:
            self.close()
            raise _deadline_error() from None
        if item is _END:
            return None
        if isinstance(item, BaseException):
            raise item
        self._space.release()
        assert isinstance(item, bytes)
        return item

    def _loop_deadline(self) -> float:
        """The deadline (time.monotonic) on the event loop's clock."""
        return self._loop.time() + self.deadline - time.monotonic()

    def close(self) -> None:
        """Tell the producer to stop (the client went away or the response ended)."""
        self._closed.set()


def _deadline_error() -> Unavailable:
    message = "the render did not finish within render_deadline; ask for a smaller output"
    return Unavailable(message, retry_after=5, limit="render_deadline")


class RenderGate:
    """At most `capacity` renders at once per worker; at most `max_queued` waiting, each for at most
    `timeout` seconds."""

    def __init__(self, capacity: int, max_queued: int, timeout: float) -> None:
        self.capacity = capacity
        self.max_queued = max_queued
        self.timeout = timeout
        self._slots = asyncio.Semaphore(capacity)
        self._waiting = 0
        self._running = 0
        #: Renders admitted since the gate was made; tells whether any started during a quiet spell.
        self.admitted = 0

    @property
    def idle(self) -> bool:
        """No render running and none waiting."""
        return self._running == 0 and self._waiting == 0

    async def acquire(self) -> None:
        if self._slots.locked() and self._waiting >= self.max_queued:
            raise Unavailable(
                f"all {self.capacity} render threads are busy and max_queued_renders={self.max_queued} "
                "requests are already waiting",
                retry_after=1,
                limit="max_queued_renders",
            )
        self._waiting += 1
        RENDERS_WAITING.inc()
        try:
            async with asyncio.timeout(self.timeout):  # no task per call, unlike wait_for
                await self._slots.acquire()
            self._running += 1
            RENDERS_RUNNING.inc()
            self.admitted += 1
        except TimeoutError:
            raise Unavailable(
                f"no render thread became free within queue_timeout={self.timeout:g} s",
                retry_after=max(1, math.ceil(self.timeout)),
                limit="queue_timeout",
            ) from None
        finally:
            self._waiting -= 1
            RENDERS_WAITING.dec()

    def release(self) -> None:
        self._running -= 1
        RENDERS_RUNNING.dec()
        self._slots.release()


class Renderer:
    """Runs renders on this worker's thread pool, gated, with a deadline, and builds the response.

    Once no render has run for `quiet_seconds`, `on_quiet` runs on a render thread: by default it gives
    the worker's free heap back to the OS (`heap.release_free_heap`)."""

    def __init__(
        self,
        threads: int,
        max_queued: int,
        queue_timeout: float,
        deadline: float,
        quiet_seconds: float = QUIET_SECONDS,
        on_quiet: Callable[[], object] = release_free_heap,
    ) -> None:
        self.executor = ThreadPoolExecutor(threads, thread_name_prefix="render")
        self.gate = RenderGate(threads, max_queued, queue_timeout)
        self.deadline = deadline
        self.quiet_seconds = quiet_seconds
        self.on_quiet = on_quiet
        self._closed = False

    async def respond(self, render: Callable[[Sink], None], media_type: str, headers: Mapping[str, str]) -> Response:
        """Run `render` and answer with its output, buffered or streamed by size."""
        await self.gate.acquire()
        try:
            response = await self._run(render, media_type, headers)
        except BaseException:
            self._release()
            raise
        if not isinstance(response, StreamingResponse):
            self._release()
        return response

    def _release(self) -> None:
        """Free a render slot; when that leaves the gate idle, trim the heap after a quiet spell."""
        self.gate.release()
        if self.gate.idle:
            asyncio.get_running_loop().call_later(self.quiet_seconds, self._trim_if_quiet, self.gate.admitted)

    def _trim_if_quiet(self, admitted: int) -> None:
        if self.gate.idle and self.gate.admitted == admitted and not self._closed:
            self.executor.submit(self.on_quiet)

    async def _run(self, render: Callable[[Sink], None], media_type: str, headers: Mapping[str, str]) -> Response:
        loop = asyncio.get_running_loop()
        channel = ChunkChannel(loop, time.monotonic() + self.deadline)

        def work() -> None:
            try:
                render(channel.write)
            except EncodeAborted:
                channel.finish(_deadline_error() if channel.timed_out else None)
            except BaseException as exc:  # delivered to the consumer, which re-raises it
                channel.finish(exc)
            else:
                channel.finish()

        loop.run_in_executor(self.executor, work)
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
            except Unavailable as exc:  # the deadline passed mid-stream: the connection is cut short
                count_refusal(exc.limit)
                raise
            finally:
                channel.close()
                self._release()

        return StreamingResponse(body(), media_type=media_type, headers=dict(headers))

    def close(self) -> None:
        self._closed = True
        self.executor.shutdown(wait=False, cancel_futures=True)
