"""Readiness (`/readyz`): whether the database and the store answer, probed cheaply and not too often.

The database probe asks it for one recorded pyramid file (the first layer by id: the primary key's
first row), which proves the connection and the schema. The store probe reads the first 8 bytes of
that file (one ranged read; never a LIST or a HEAD); while the database does not answer it reads the
file the database named last. With nothing ingested there is no file to read, and the store is not
probed. Each probe runs on a daemon thread of its own with a timeout, so a hung connection never
blocks the event loop nor holds up the process's exit; a probe still under way when the next check
comes is waited for again rather than started twice. A worker keeps its result for `cache_seconds`,
so however often a load balancer asks, each worker probes at most once per period.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select

from tierserve.db.database import Database
from tierserve.db.models import ImageLayer
from tierserve.errors import TierserveError
from tierserve.storage import ObjectInfo, StoreReader

log = logging.getLogger(__name__)

#: Bytes the store probe reads: a TIFF header.
PROBE_BYTES = 8


@dataclass(frozen=True)
class Check:
    """One probe's outcome: whether it passed, and "ok" or what was found."""

    ok: bool
    detail: str = "ok"


class _Probe:
    """A blocking probe run on a daemon thread; an exception it raises is a failed check."""

    def __init__(self, name: str, run: Callable[[], Check]) -> None:
        self.name = name
        self._run = run
        self._outcome: asyncio.Future[Check] | None = None

    async def __call__(self, timeout: float) -> Check:
        """Run the probe (or wait again for the one under way) for at most `timeout` seconds."""
        if self._outcome is None or self._outcome.done():
            loop = asyncio.get_running_loop()
            self._outcome = loop.create_future()
            threading.Thread(target=self._work, args=(loop, self._outcome), daemon=True, name="readiness").start()
        try:
            async with asyncio.timeout(timeout):
                return await asyncio.shield(self._outcome)
        except TimeoutError:
            return Check(False, f"no answer within {timeout:g} s")

    def _work(self, loop: asyncio.AbstractEventLoop, outcome: asyncio.Future[Check]) -> None:
        try:
            check = self._run()
        except Exception as exc:
            log.warning("readiness: the %s probe failed: %s", self.name, exc)
            shown = exc.message if isinstance(exc, TierserveError) else f"{type(exc).__name__} (details in the log)"
            check = Check(False, shown)
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            loop.call_soon_threadsafe(_settle, outcome, check)


def _settle(outcome: asyncio.Future[Check], check: Check) -> None:
    if not outcome.done():
        outcome.set_result(check)


class Readiness:
    """The probes of a worker's database and store, their last result kept for `cache_seconds`."""

    def __init__(self, database: Database, store: StoreReader, cache_seconds: float, timeout: float) -> None:
        self.database = database
        self.store = store
        self.cache_seconds = cache_seconds
        self.timeout = timeout
        #: The file the store probe reads: the one the database named last (None: none named).
        self._file: ObjectInfo | None = None
        self._probes = [_Probe("database", self._probe_database), _Probe("store", self._probe_store)]
        self._result: dict[str, Check] = {}
        self._expires = 0.0
        self._lock = asyncio.Lock()

    async def checks(self) -> dict[str, Check]:
        """The outcome of each probe ("database", then "store"), from the last `cache_seconds` or probed now."""
        async with self._lock:
            if time.monotonic() >= self._expires:
                self._result = {probe.name: await probe(self.timeout) for probe in self._probes}
                self._expires = time.monotonic() + self.cache_seconds
            return self._result

    def _probe_database(self) -> Check:
        statement = select(ImageLayer.path, ImageLayer.byte_size, ImageLayer.version).order_by(ImageLayer.id).limit(1)
        with self.database.engine.connect() as connection:
            row = connection.execute(statement).first()
        self._file = None if row is None else ObjectInfo(row.path, row.byte_size, row.version)
        return Check(True)

    def _probe_store(self) -> Check:
        file = self._file
        if file is None:
            return Check(True, "not probed: the database names no stored file")
        try:
            self.store.open(file).read_ranges([(0, min(PROBE_BYTES, file.size))])
        except TierserveError as exc:
            log.warning("readiness: reading %s of store %s failed: %s", file.key, self.store.name, exc.message)
            return Check(False, exc.message)
        return Check(True)
