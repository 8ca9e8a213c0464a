from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from tierserve.db.database import Database
from tierserve.db.models import Base


def test_migrations_build_exactly_the_models_schema(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'm.db'}")
    database.migrate()
    database.migrate()  # idempotent
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
        tables = set(inspect(connection).get_table_names())
    assert {"sub_images", "data_sets", "equalizations", "atlases", "image_layers"} <= tables
    assert "alembic_version" in tables
    database.dispose()
