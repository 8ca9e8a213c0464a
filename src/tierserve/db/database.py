"""Engine and session factory for a database URL, and schema migration to the latest revision."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from tierserve.storage import StoreReader

MIGRATIONS = Path(__file__).parent / "migrations"


#: The PostgreSQL advisory lock key that serialises migrations (any constant shared by every process).
MIGRATION_LOCK = 0x7469657273657276  # "tierserv"


class Database:
    """A database reached through one SQLAlchemy URL (SQLite file by default, PostgreSQL by URL)."""

    def __init__(self, url: str) -> None:
        """An engine for `url` (no connection yet; folders are not created)."""
        self.url = url
        self.engine = _create_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    def session(self) -> Session:
        return self.sessions()

    def migrate(self, store: StoreReader | None = None) -> None:
        """Bring the schema to the newest Alembic revision (creates it on an empty database).

        Migrations that record facts of stored files (the versions of 0002) ask `store`; without it
        they record what they can without one.
        """
        config = alembic_config()
        with self.engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # Processes starting together on one database migrate one after the other: the lock
                # is held until this transaction ends, and the next one finds the schema up to date.
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            config.attributes["connection"] = connection
            config.attributes["store"] = store
            command.upgrade(config, "head")

    def dispose(self) -> None:
        self.engine.dispose()


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def _create_engine(url: str) -> Engine:
    """An engine for `url`; a SQLite file's folder must exist (`Settings.check` creates the data directory)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
