"""scheduled calls and their attempt history

Revision ID: scheduler_0002
Revises: scheduler_0001
Create Date: 2026-11-22 05:42:36
"""

import sqlalchemy as sa
from alembic import op

revision = "scheduler_0002"
down_revision = "scheduler_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Instants are UTC (scheduler_service.models.UtcDateTime reads them back timezone-aware).
    op.create_table(
        "scheduled_calls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="Pending", nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("method", sa.String(length=10), server_default="GET", nullable=False),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(length=128), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('Pending', 'Running', 'Succeeded', 'Failed', 'Cancelled')",
            name=op.f("ck_scheduled_calls_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scheduled_calls")),
    )
    op.create_index(
        "ix_scheduled_calls_status_next_attempt_at",
        "scheduled_calls",
        ["status", "next_attempt_at"],
    )
    op.create_index(
        "ix_scheduled_calls_owner_timestamp", "scheduled_calls", ["owner", "timestamp"]
    )
    op.create_index("ix_scheduled_calls_timestamp", "scheduled_calls", ["timestamp"])

    op.create_table(
        "call_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["call_id"],
            ["scheduled_calls.id"],
            name=op.f("fk_call_attempts_call_id_scheduled_calls"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_attempts")),
        sa.UniqueConstraint("call_id", "number", name="uq_call_attempts_call_number"),
    )
    op.create_index(op.f("ix_call_attempts_call_id"), "call_attempts", ["call_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_call_attempts_call_id"), table_name="call_attempts")
    op.drop_table("call_attempts")
    op.drop_index("ix_scheduled_calls_timestamp", table_name="scheduled_calls")
    op.drop_index("ix_scheduled_calls_owner_timestamp", table_name="scheduled_calls")
    op.drop_index("ix_scheduled_calls_status_next_attempt_at", table_name="scheduled_calls")
    op.drop_table("scheduled_calls")
