"""Building images on a Dask distributed cluster (`pip install 'tierserve[dask]'`).

The driver submits one task per image; each worker opens the store from its URL, builds the image in
a scratch folder of its own and returns the `BuiltImage`, and the driver commits results as they
arrive. Workers report progress as Dask events (`Worker.log_event`), which the driver's client
receives by subscribing to the topic, so the progress display counts tiles across the cluster. A
worker that dies mid-image loses its task to the scheduler, which runs it again on another worker;
the lost attempt's published files, if any, have keys no row names (`tierserve gc` lists them).
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tierserve.errors import TierserveError
from tierserve.ingest.build import ImageJob
from tierserve.ingest.pipeline import IngestObserver, Outcome, build_in_scratch
from tierserve.ingest.source_access import SourceAccess
from tierserve.storage import open_store, run_scratch

#: Dask event topic of progress reports.
PROGRESS_TOPIC = "tierserve-ingest-progress"
INSTALL_HINT = "distributed ingest needs Dask: pip install 'tierserve[dask]'"


class DaskUnavailable(TierserveError):
    """Dask is not installed, or the scheduler cannot be reached."""


class DaskBuilder:
    """Builds images on the workers of a Dask cluster that can all reach `store_url`."""

    def __init__(self, client: Any, store_url: str, data_dir: Path) -> None:
        self.client = client
        self.store_url = store_url
        self.data_dir = data_dir

    def build(
        self, jobs: Sequence[ImageJob], access: SourceAccess, observer: IngestObserver
    ) -> Iterator[tuple[ImageJob, Outcome]]:
        from distributed import as_completed

        run = uuid.uuid4().hex[:8]
        topic = f"{PROGRESS_TOPIC}-{run}"

        def on_event(event: tuple[float, dict[str, Any]]) -> None:
            message = event[1]
            if message["event"] == "started":
                observer.image_started(message["entry"], message["tiles"])
            else:
                observer.tiles_written(message["entry"], message["tiles"])

        self.client.subscribe_topic(topic, on_event)
        try:
            futures = {
                self.client.submit(
                    _build_on_worker,
                    job,
                    self.store_url,
                    str(self.data_dir),
                    access,
                    topic,
                    key=f"build-{job.entry.id}-{run}",
                ): job
                for job in jobs
            }
            for future in as_completed(futures):
                job = futures[future]
                try:
                    outcome: Outcome = future.result()
                except Exception as exc:  # a task that failed on every worker it was given (e.g. KilledWorker)
                    outcome = f"the cluster could not build it: {type(exc).__name__}: {exc}"
                yield job, outcome
        finally:
            self.client.unsubscribe_topic(topic)


class _EventObserver:
    """Sends a worker's progress to the driver as Dask events."""

    def __init__(self, topic: str) -> None:
        from distributed import get_worker

        self._worker = get_worker()
        self._topic = topic

    def image_started(self, entry: str, tiles: int) -> None:
        self._worker.log_event(self._topic, {"event": "started", "entry": entry, "tiles": tiles})

    def tiles_written(self, entry: str, count: int) -> None:
        self._worker.log_event(self._topic, {"event": "tiles", "entry": entry, "tiles": count})

    def image_finished(self, entry: str, outcome: str) -> None: ...


def _build_on_worker(job: ImageJob, store_url: str, data_dir: str, access: SourceAccess, topic: str) -> Outcome:
    """The task a worker runs: build one image into the store at `store_url`."""
    store = open_store(store_url, Path(data_dir))
    with run_scratch(store.scratch_root()) as run:
        return build_in_scratch(job, store, access, run, _EventObserver(topic))


def require_dask() -> None:
    """Raise `DaskUnavailable` with the install hint when Dask distributed is not installed."""
    try:
        import distributed  # noqa: F401
    except ImportError as exc:
        raise DaskUnavailable(INSTALL_HINT) from exc


@contextmanager
def dask_client(workers: int | None, scheduler: str | None) -> Iterator[Any]:
    """A client of a new local cluster of `workers` worker processes (one thread each), or of the
    existing `scheduler` (``tcp://host:8786``); the local cluster is shut down on exit.

    Raises `DaskUnavailable` naming the extra to install, or the scheduler that did not answer.
    """
    require_dask()
    from distributed import Client, LocalCluster

    logging.getLogger("distributed").setLevel(logging.WARNING)  # its INFO lines would drown the progress

    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=10)
        except OSError as exc:
            raise DaskUnavailable(f"Dask scheduler {scheduler} did not answer: {exc}") from exc
        with client:
            yield client
        return
    import dask

    # Dask starts workers with MALLOC_TRIM_THRESHOLD_=65536, which costs a pyramid build 70-90% more CPU
    # (bench.ingest_scale): a key set to None is left out of the workers' environment. Each worker gets
    # its share of the cores for libvips and the tile encoder.
    share = max(1, (os.cpu_count() or 1) // (workers or 1))
    with (
        dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}),
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            env={"VIPS_CONCURRENCY": str(share)},
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client
