"""Keep-alive connections rebalanced over the workers of a socket per worker.

The kernel hashes each new connection to one worker's socket (`api.workers`) and the connection stays
there: a client with a few keep-alive connections often lands on fewer workers than it has connections
(4 connections on 2 workers: all on one worker 1 time in 8, 3 and 1 half the time), and a worker renders
small images on its event loop, one core. So the workers share a table of their open connections
(`ConnectionTable`, shared memory made by the supervisor), and a worker holding more than its share,
ceil(all open connections / live workers), answers a request with `connection: close` and closes the
connection after the response (`WorkerShare.should_close`); the client reconnects and the kernel hashes
the new connection again, so a few reconnections bring the split to even. A worker only marks as many
connections as it holds above its share, and none while it holds one or none. A worker that stops
frees its slot (the app's shutdown); the slots of workers that are gone otherwise (killed, or a pid
reused) are freed when a worker joins and before a worker closes a connection, so the share stays
within reach. Load balancers and gRPC's "max connection age" rebalance long-lived connections the
same way.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
from dataclasses import dataclass, field
from typing import Any

#: The worker share of this process, set when its listening socket is unpickled (`api.workers`);
#: None in a single-process server or without a socket per worker.
current: WorkerShare | None = None


class ConnectionTable:
    """(pid, open connections) of up to `slots` worker processes in shared memory; made by the
    supervisor and handed to each worker pickled with its listening socket."""

    def __init__(self, slots: int) -> None:
        self.slots = slots
        # uvicorn spawns its workers: the table and its lock (for changes of owner) must come from that context
        self._table: Any = multiprocessing.get_context("spawn").Array(ctypes.c_long, 2 * slots)

    def join(self) -> WorkerShare | None:
        """Claim a free slot for this process, after freeing those of workers that are gone (killed, or
        stopped without freeing theirs); None when every slot belongs to a live worker (more workers than
        slots: this one neither counts nor rebalances)."""
        with self._table.get_lock():
            values = self._table.get_obj()
            _free_gone(values)
            for slot in range(self.slots):
                if values[2 * slot] == 0:
                    values[2 * slot], values[2 * slot + 1] = os.getpid(), 0
                    return WorkerShare(self._table, slot)
        return None


@dataclass
class WorkerShare:
    """This worker's slot of a `ConnectionTable` (`table`: the shared array with its lock). Only this
    process writes its own slot, so counting takes no lock; reads of the others' may be torn, which
    only delays a decision."""

    table: Any
    slot: int
    leaving: int = field(default=0)

    @property
    def _values(self) -> Any:
        return self.table.get_obj()

    def leave(self) -> None:
        """Free the slot (a worker that stops; the app's shutdown calls it)."""
        with self.table.get_lock():
            self._values[2 * self.slot], self._values[2 * self.slot + 1] = 0, 0

    def opened(self) -> None:
        self._values[2 * self.slot + 1] += 1

    def closed(self, marked: bool) -> None:
        """A connection ended; `marked` when this worker had asked it to close."""
        self._values[2 * self.slot + 1] -= 1
        if marked:
            self.leaving -= 1

    def unmark(self) -> None:
        """A marked connection stays open after all (a pipelined request arrived behind it)."""
        self.leaving -= 1

    def should_close(self) -> bool:
        """Whether to close the connection of the request just received after its response: this worker
        holds more connections than its share, not counting those already marked. Counts the mark.
        Before closing one, frees the slots of workers that are gone (whose counts would otherwise
        keep the share out of reach) and decides again."""
        values = self._values
        mine = values[2 * self.slot + 1] - self.leaving
        if mine <= 1 or mine <= _share(values[:]):
            return False
        with self.table.get_lock():
            _free_gone(values)
            if mine <= _share(values[:]):
                return False
        self.leaving += 1
        return True


def open_connections() -> int | None:
    """The open connections of every live worker of the table; None without a table (a single-process
    server, or no socket per worker)."""
    if current is None:
        return None
    return sum(_live_counts(current._values[:]))


def spare_cores(cores: int) -> bool:
    """Whether other cores are likely idle: the workers hold fewer open connections than the machine's
    `cores`. True without a table (one worker, whose concurrent reads its `TileReader` counts; or several
    without a socket each or with rebalancing off, which then decode lone reads in parallel as before)."""
    connections = open_connections()
    return connections is None or connections < cores


def leave() -> None:
    """Free this process's slot, if it has one."""
    if current is not None:
        current.leave()


def _share(pairs: list[int]) -> int:
    """ceil(open connections / workers) of a table's (pid, connections) pairs; free slots (pid 0) do
    not count, whatever count they were left with."""
    counts = _live_counts(pairs)
    return -(-sum(counts) // max(1, len(counts)))


def _live_counts(pairs: list[int]) -> list[int]:
    """The connection counts of a table's (pid, connections) pairs whose slot is taken (pid not 0)."""
    return [count for pid, count in zip(pairs[0::2], pairs[1::2], strict=True) if pid]


def _free_gone(values: Any) -> None:
    """Zero the slots of workers that are no longer alive (under the table's lock)."""
    for slot in range(len(values) // 2):
        pid = values[2 * slot]
        if pid and not _alive(pid):
            values[2 * slot], values[2 * slot + 1] = 0, 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's (a reused pid)
        return True
    return True
