"""sessions: refresh token families, image API tokens, password resets, linked identities

Revision ID: auth_0003
Revises: auth_0002
Create Date: 2026-11-22 05:33:16
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "auth_0003"
down_revision = "auth_0002"
branch_labels = None
depends_on = None


def utc(name: str, nullable: bool = False) -> sa.Column:
    """A UTC instant (servicekit.db.UtcDateTime reads it back timezone-aware)."""
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def user_id(table: str) -> list[Any]:
    return [
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f(f"fk_{table}_user_id_users"), ondelete="CASCADE"
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "refresh_tokens",
        sa.Column("jti", sa.String(length=36), nullable=False),
        sa.Column("family_id", sa.String(length=36), nullable=False),
        *user_id("refresh_tokens"),
        utc("issued_at"),
        utc("expires_at"),
        utc("used_at", nullable=True),
        utc("revoked_at", nullable=True),
        sa.Column("access_jti", sa.String(length=36), nullable=False),
        utc("access_expires_at"),
        sa.PrimaryKeyConstraint("jti", name=op.f("pk_refresh_tokens")),
    )
    op.create_index(op.f("ix_refresh_tokens_family_id"), "refresh_tokens", ["family_id"])
    op.create_index(op.f("ix_refresh_tokens_user_id"), "refresh_tokens", ["user_id"])

    op.create_table(
        "api_tokens",
        sa.Column("jti", sa.String(length=36), nullable=False),
        *user_id("api_tokens"),
        utc("issued_at"),
        utc("expires_at"),
        utc("revoked_at", nullable=True),
        sa.PrimaryKeyConstraint("jti", name=op.f("pk_api_tokens")),
    )
    op.create_index(op.f("ix_api_tokens_user_id"), "api_tokens", ["user_id"])

    op.create_table(
        "password_reset_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        *user_id("password_reset_tokens"),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        utc("created_at"),
        utc("expires_at"),
        utc("used_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_password_reset_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_password_reset_tokens_token_hash")),
    )
    op.create_index(
        op.f("ix_password_reset_tokens_user_id"), "password_reset_tokens", ["user_id"]
    )

    op.create_table(
        "linked_identities",
        sa.Column("id", sa.Integer(), nullable=False),
        *user_id("linked_identities"),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("picture_url", sa.String(length=2048), nullable=True),
        utc("linked_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_linked_identities")),
        sa.UniqueConstraint("provider", "subject", name=op.f("uq_linked_identities_provider")),
        sa.UniqueConstraint("user_id", "provider", name=op.f("uq_linked_identities_user_id")),
    )
    op.create_index(op.f("ix_linked_identities_user_id"), "linked_identities", ["user_id"])


def downgrade() -> None:
    for table in ("linked_identities", "password_reset_tokens", "api_tokens"):
        op.drop_index(op.f(f"ix_{table}_user_id"), table_name=table)
        op.drop_table(table)
    op.drop_index(op.f("ix_refresh_tokens_user_id"), table_name="refresh_tokens")
    op.drop_index(op.f("ix_refresh_tokens_family_id"), table_name="refresh_tokens")
    op.drop_table("refresh_tokens")
