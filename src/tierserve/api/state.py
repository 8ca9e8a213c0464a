"""What the app holds for the lifetime of a worker process."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from tierserve.api import balance
from tierserve.api.output_cache import OutputCache
from tierserve.api.readiness import Readiness
from tierserve.api.streaming import Renderer
from tierserve.core.tiles import TileReader
from tierserve.db.database import Database
from tierserve.db.repository import ImageRecords
from tierserve.settings import Settings, cpu_cores
from tierserve.storage import StoreReader


@dataclass
class AppState:
    settings: Settings
    database: Database
    images: ImageRecords
    store: StoreReader
    tiles: TileReader
    renderer: Renderer
    outputs: OutputCache
    readiness: Readiness
    #: `Settings.resolved_inline_render_pixels`, resolved once (it asks for the CPU count).
    inline_render_pixels: int

    @classmethod
    def from_settings(cls, settings: Settings) -> AppState:
        database = Database(settings.resolved_database_url)
        store = settings.open_store()
        return cls(
            settings=settings,
            database=database,
            images=ImageRecords(database, settings.record_cache_seconds),
            store=store,
            tiles=TileReader(
                settings.decode_threads,
                jpeg_dct=settings.jpeg_dct,
                spare_cores=partial(balance.spare_cores, cpu_cores()),
                passthrough=settings.tile_passthrough,
            ),
            renderer=Renderer(
                settings.render_threads, settings.max_queued_renders, settings.queue_timeout, settings.render_deadline
            ),
            outputs=OutputCache(settings.output_cache_bytes),
            readiness=Readiness(database, store, settings.readiness_cache_seconds, settings.readiness_timeout),
            inline_render_pixels=settings.resolved_inline_render_pixels,
        )

    def close(self) -> None:
        self.renderer.close()
        self.tiles.close()
        self.database.dispose()
