"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "atlases",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.String(length=1024), nullable=True),
        sa.Column("image_type", sa.String(length=255), nullable=True),
        sa.Column("structure_graph_id", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "data_sets",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("description", sa.String(length=1024), nullable=True),
        sa.Column("failed", sa.Boolean(), nullable=True),
        sa.Column("expression", sa.Boolean(), nullable=True),
        sa.Column("delegate", sa.Boolean(), nullable=True),
        sa.Column("plane_of_section_id", sa.BigInteger(), nullable=True),
        sa.Column("reference_space_id", sa.BigInteger(), nullable=True),
        sa.Column("specimen_id", sa.BigInteger(), nullable=True),
        sa.Column("section_thickness", sa.Float(), nullable=True),
        sa.Column("storage_directory", sa.String(length=1024), nullable=True),
        sa.Column("red_channel", sa.String(length=255), nullable=True),
        sa.Column("green_channel", sa.String(length=255), nullable=True),
        sa.Column("blue_channel", sa.String(length=255), nullable=True),
        sa.Column("qc_date", sa.String(length=64), nullable=True),
        sa.Column("weight", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("data_sets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_data_sets_type"), ["type"], unique=False)

    op.create_table(
        "atlas_data_sets_atlases",
        sa.Column("atlas_data_set_id", sa.BigInteger(), nullable=False),
        sa.Column("atlas_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["atlas_data_set_id"], ["data_sets.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["atlas_id"], ["atlases.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("atlas_data_set_id", "atlas_id"),
    )
    op.create_table(
        "equalizations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("section_data_set_id", sa.BigInteger(), nullable=False),
        sa.Column("red_lower", sa.Integer(), nullable=False),
        sa.Column("red_upper", sa.Integer(), nullable=False),
        sa.Column("green_lower", sa.Integer(), nullable=False),
        sa.Column("green_upper", sa.Integer(), nullable=False),
        sa.Column("blue_lower", sa.Integer(), nullable=False),
        sa.Column("blue_upper", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["section_data_set_id"], ["data_sets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("section_data_set_id"),
    )
    op.create_table(
        "sub_images",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("data_set_id", sa.BigInteger(), nullable=False),
        sa.Column("section_number", sa.Integer(), nullable=False),
        sa.Column("x", sa.Integer(), nullable=False),
        sa.Column("y", sa.Integer(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("image_width", sa.Integer(), nullable=False),
        sa.Column("image_height", sa.Integer(), nullable=False),
        sa.Column("tier_count", sa.Integer(), nullable=False),
        sa.Column("resolution", sa.Float(), nullable=True),
        sa.Column("bits_per_component", sa.Integer(), nullable=False),
        sa.Column("number_of_components", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("image_type", sa.String(length=64), nullable=False),
        sa.Column("annotated", sa.Boolean(), nullable=False),
        sa.Column("failed", sa.Boolean(), nullable=False),
        sa.Column("expression", sa.Boolean(), nullable=True),
        sa.Column("expression_path", sa.String(length=1024), nullable=True),
        sa.Column("projection_function", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["data_set_id"],
            ["data_sets.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("sub_images", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sub_images_data_set_id"), ["data_set_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_sub_images_type"), ["type"], unique=False)

    op.create_table(
        "image_layers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sub_image_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("atlas_id", sa.BigInteger(), nullable=True),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("tier_count", sa.Integer(), nullable=False),
        sa.Column("bits_per_component", sa.Integer(), nullable=False),
        sa.Column("number_of_components", sa.Integer(), nullable=False),
        sa.Column("byte_size", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["atlas_id"],
            ["atlases.id"],
        ),
        sa.ForeignKeyConstraint(["sub_image_id"], ["sub_images.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sub_image_id", "kind", "atlas_id", name="uq_image_layer"),
    )


def downgrade() -> None:
    op.drop_table("image_layers")
    with op.batch_alter_table("sub_images", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sub_images_type"))
        batch_op.drop_index(batch_op.f("ix_sub_images_data_set_id"))

    op.drop_table("sub_images")
    op.drop_table("equalizations")
    op.drop_table("atlas_data_sets_atlases")
    with op.batch_alter_table("data_sets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_data_sets_type"))

    op.drop_table("data_sets")
    op.drop_table("atlases")
