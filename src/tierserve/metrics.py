"""The server's Prometheus metrics (docs/operations.md#metrics), kept with the official client.

Every instrument lives here, so that the layers that count (the request middleware, the renderer, the
output cache, the stores) share one list. A process with several uvicorn workers counts in the
client's multi-process mode: `tierserve serve` gives the workers a private folder in
PROMETHEUS_MULTIPROC_DIR (`multiprocess_folder`) before they start, each worker writes its values to
files there, and `/metrics` adds up the files of every worker (`exposition`). A single process counts
in memory and `/metrics` shows the default registry, the process's CPU and memory included.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from prometheus_client.exposition import CONTENT_TYPE_LATEST

#: The client's variable naming the folder of multi-process mode; read when `prometheus_client` is imported.
MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
#: The media type of `exposition`'s text.
CONTENT_TYPE = CONTENT_TYPE_LATEST
#: From a tile answered on the event loop (under 1 ms) to a whole image streamed until the render deadline.
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0)
#: From a local pread of a few tiles (tens of microseconds) to object-store GETs retried for seconds.
STORE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)

REQUESTS = Counter("tierserve_requests", "HTTP requests answered, by route family and status.", ["route", "status"])
REQUEST_SECONDS = Histogram(
    "tierserve_request_duration_seconds",
    "Seconds from a request's arrival to the end of its answer, by route family.",
    ["route"],
    buckets=REQUEST_BUCKETS,
)
RESPONSE_BYTES = Counter("tierserve_response_body_bytes", "Response body bytes sent, by route family.", ["route"])
RENDERS = Gauge(
    "tierserve_renders",
    "Renders waiting for a render thread (waiting) or holding one (running).",
    ["state"],
    multiprocess_mode="livesum",
)
REFUSALS = Counter("tierserve_refusals", "Requests refused by a limit, by the limit's setting.", ["limit"])
STORE_READ_SECONDS = Histogram(
    "tierserve_store_read_duration_seconds",
    "Reads of stored files (one round of byte-range reads each), by store backend.",
    ["backend"],
    buckets=STORE_BUCKETS,
)
STORE_READ_BYTES = Counter("tierserve_store_read_bytes", "Bytes read from stored files, by store backend.", ["backend"])
OUTPUT_CACHE = Counter(
    "tierserve_output_cache_lookups", "Output cache lookups of small answers, by result (hit, miss).", ["result"]
)

RENDERS_WAITING = RENDERS.labels("waiting")
RENDERS_RUNNING = RENDERS.labels("running")
OUTPUT_CACHE_HITS = OUTPUT_CACHE.labels("hit")
OUTPUT_CACHE_MISSES = OUTPUT_CACHE.labels("miss")


def count_refusal(limit: str) -> None:
    """Count a request refused by the limit named `limit` (a setting's name, e.g. max_queued_renders)."""
    REFUSALS.labels(limit).inc()


def exposition() -> bytes:
    """All metrics in the Prometheus text format (`CONTENT_TYPE`): every worker's in multi-process mode,
    after forgetting the live gauges of workers that are gone; else this process's default registry."""
    folder = os.environ.get(MULTIPROCESS_VARIABLE)
    if not folder:
        return generate_latest(REGISTRY)
    forget_dead_workers(folder)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, folder)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


def forget_dead_workers(folder: str) -> None:
    """Drop the live gauge files (renders waiting and running) of processes that no longer exist, e.g. a
    worker that was killed: their renders ended with them. Counters and histograms of dead workers stay."""
    for path in Path(folder).glob("gauge_live*_*.db"):
        pid = int(path.stem.rpartition("_")[2])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, folder)  # type: ignore[no-untyped-call]
        except PermissionError:  # alive, but another user's (a reused pid)
            pass


def worker_stopped() -> None:
    """Forget this process's live gauges at shutdown (multi-process mode only)."""
    folder = os.environ.get(MULTIPROCESS_VARIABLE)
    if folder:
        multiprocess.mark_process_dead(os.getpid(), folder)  # type: ignore[no-untyped-call]


@contextmanager
def multiprocess_folder(enabled: bool) -> Iterator[None]:
    """While serving with `enabled` (metrics on and several workers): a new private folder in
    PROMETHEUS_MULTIPROC_DIR for the workers to start with, removed afterwards. Otherwise the variable
    is unset, and a single process counts in memory."""
    os.environ.pop(MULTIPROCESS_VARIABLE, None)
    if not enabled:
        yield
        return
    folder = tempfile.mkdtemp(prefix="tierserve-metrics-")
    os.environ[MULTIPROCESS_VARIABLE] = folder
    try:
        yield
    finally:
        os.environ.pop(MULTIPROCESS_VARIABLE, None)
        shutil.rmtree(folder, ignore_errors=True)
