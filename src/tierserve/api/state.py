"""What the app holds for the lifetime of a worker process."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from tierserve.core.pyramid import PyramidCache
from tierserve.db.database import Database
from tierserve.settings import Settings
from tierserve.storage import LocalStore, Store


@dataclass
class AppState:
    settings: Settings
    database: Database
    store: Store
    pyramids: PyramidCache
    executor: ThreadPoolExecutor

    @classmethod
    def from_settings(cls, settings: Settings) -> AppState:
        return cls(
            settings=settings,
            database=Database(settings.resolved_database_url),
            store=LocalStore(settings.store_dir),
            pyramids=PyramidCache(settings.open_files),
            executor=ThreadPoolExecutor(settings.render_threads, thread_name_prefix="render"),
        )

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.pyramids.clear()
        self.database.dispose()
