"""image_layers.version: the stored file's version, recorded at ingest (ETags need no store request)

Existing layers get the version their store reports now, when `Database.migrate` is given the store
(`config.attributes["store"]`, as the CLI and the server do); a layer whose file is missing, or a
migration run without a store, records an empty version, which only makes its ETag change once.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

from tierserve.errors import StorageError

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_layers = sa.table("image_layers", sa.column("id", sa.Integer), sa.column("path", sa.String), sa.column("version"))


def upgrade() -> None:
    with op.batch_alter_table("image_layers") as batch:
        batch.add_column(sa.Column("version", sa.String(length=255), nullable=False, server_default=""))
    store = context.config.attributes.get("store")
    if store is None:
        return
    connection = op.get_bind()
    for layer_id, path in connection.execute(sa.select(_layers.c.id, _layers.c.path)).all():
        try:
            version = store.stat(path).version
        except StorageError:
            continue
        connection.execute(sa.update(_layers).where(_layers.c.id == layer_id).values(version=version))


def downgrade() -> None:
    with op.batch_alter_table("image_layers") as batch:
        batch.drop_column("version")
