"""Keep-alive connections rebalanced over the workers of a socket per worker.

The kernel hashes each new connection to one worker's socket (`api.workers`) and the connection stays
there: a client with a few keep-alive connections often lands on fewer workers than it has connections
(4 connections on 2 workers: all on one worker 1 time in 8, 3 and 1 half the time), and a worker renders
small images on its event loop, one core. So the workers share a table of their open connections
(`ConnectionTable`, shared memory made by the supervisor), and a worker holding more than its share,
ceil(all open connections / live workers), answers a request with `connection: close` and closes the
connection after the response (`WorkerShare.should_close`); the client reconnects and the kernel hashes
the new connection again, so a few reconnections bring the split to even. A worker only marks as many
connections as it holds above its share, and none while it holds one or none. Load balancers and
gRPC's "max connection age" rebalance long-lived connections the same way.
"""

from __future__ import annotations

import atexit
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
        # uvicorn spawns its workers: the table and its lock (for claims) must come from that context
        self._table: Any = multiprocessing.get_context("spawn").Array(ctypes.c_long, 2 * slots)

    def join(self) -> WorkerShare | None:
        """Claim a slot for this process: a free one or one of a worker that is gone (uvicorn replaced
        it); None when every slot belongs to a live worker (more workers than slots: no rebalancing)."""
        with self._table.get_lock():
            values = self._table.get_obj()
            for slot in range(self.slots):
                pid = values[2 * slot]
                if pid == 0 or not _alive(pid):
                    values[2 * slot], values[2 * slot + 1] = os.getpid(), 0
                    share = WorkerShare(values, slot)
                    atexit.register(share.leave)  # a worker stopped by SIGTTOU frees its slot
                    return share
        return None


@dataclass
class WorkerShare:
    """This worker's slot of a `ConnectionTable` (`values`: the shared pairs, read without the lock;
    only this process writes its own slot)."""

    values: Any
    slot: int
    leaving: int = field(default=0)

    def leave(self) -> None:
        self.values[2 * self.slot], self.values[2 * self.slot + 1] = 0, 0

    def opened(self) -> None:
        self.values[2 * self.slot + 1] += 1

    def closed(self, marked: bool) -> None:
        """A connection ended; `marked` when this worker had asked it to close."""
        self.values[2 * self.slot + 1] -= 1
        if marked:
            self.leaving -= 1

    def should_close(self) -> bool:
        """Whether to close the connection of the request just received after its response: this worker
        holds more connections than its share, not counting those already marked. Counts the mark."""
        mine = self.values[2 * self.slot + 1] - self.leaving
        if mine <= 1:
            return False
        pairs = self.values[:]
        workers = sum(1 for pid in pairs[0::2] if pid)
        share = -(-sum(pairs[1::2]) // workers)
        if mine <= share:
            return False
        self.leaving += 1
        return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's (a reused pid)
        return True
    return True
