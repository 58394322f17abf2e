"""an index for counting one owner's unfinished calls (the cap on pending calls)

Revision ID: scheduler_0003
Revises: scheduler_0002
Create Date: 2026-12-07 17:30:00
"""

from alembic import op

revision = "scheduler_0003"
down_revision = "scheduler_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_scheduled_calls_owner_status", "scheduled_calls", ["owner", "status"])


def downgrade() -> None:
    op.drop_index("ix_scheduled_calls_owner_status", table_name="scheduled_calls")
