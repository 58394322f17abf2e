"""images, stored files and usage: the image API's pictures, other services' files, quotas

Revision ID: media_0002
Revises: media_0001
Create Date: 2026-11-22 07:29:09
"""

import sqlalchemy as sa
from alembic import op

revision = "media_0002"
down_revision = "media_0001"
branch_labels = None
depends_on = None


def utc(name: str) -> sa.Column:
    """A UTC instant (servicekit.db.UtcDateTime reads it back timezone-aware)."""
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def picture_columns() -> list[sa.Column]:
    return [
        sa.Column("content_type", sa.String(length=32), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "images",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("thumbnail_key", sa.String(length=64), nullable=False),
        sa.Column("original_name", sa.String(length=255), nullable=False),
        sa.Column("thumbnail_size", sa.BigInteger(), nullable=False),
        *picture_columns(),
        utc("created_at"),
        utc("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_images")),
        sa.UniqueConstraint("key", name=op.f("uq_images_key")),
        sa.UniqueConstraint("thumbnail_key", name=op.f("uq_images_thumbnail_key")),
    )
    op.create_index("ix_images_owner_id", "images", ["owner", "id"])
    op.create_table(
        "stored_files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("service", sa.String(length=64), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        *picture_columns(),
        utc("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stored_files")),
        sa.UniqueConstraint("key", name=op.f("uq_stored_files_key")),
    )
    op.create_index("ix_stored_files_owner", "stored_files", ["owner"])
    op.create_table(
        "usage",
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("images", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("owner", name=op.f("pk_usage")),
    )


def downgrade() -> None:
    op.drop_table("usage")
    op.drop_index("ix_stored_files_owner", table_name="stored_files")
    op.drop_table("stored_files")
    op.drop_index("ix_images_owner_id", table_name="images")
    op.drop_table("images")
