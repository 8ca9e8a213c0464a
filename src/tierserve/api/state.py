"""What the app holds for the lifetime of a worker process."""

from __future__ import annotations

from dataclasses import dataclass

from tierserve.api.streaming import Renderer
from tierserve.core.tiles import set_decode_threads
from tierserve.db.database import Database
from tierserve.db.repository import ImageRecords
from tierserve.settings import Settings
from tierserve.storage import LocalStore, Store


@dataclass
class AppState:
    settings: Settings
    database: Database
    images: ImageRecords
    store: Store
    renderer: Renderer

    @classmethod
    def from_settings(cls, settings: Settings) -> AppState:
        set_decode_threads(settings.decode_threads)
        database = Database(settings.resolved_database_url)
        return cls(
            settings=settings,
            database=database,
            images=ImageRecords(database, settings.record_cache_seconds),
            store=LocalStore(settings.store_dir),
            renderer=Renderer(
                settings.render_threads, settings.max_queued_renders, settings.queue_timeout, settings.render_deadline
            ),
        )

    def close(self) -> None:
        self.renderer.close()
        self.database.dispose()
