"""baseline: auth_service's own database, before its first tables

Revision ID: auth_0001
Revises:
Create Date: 2026-11-22 00:00:00
"""

revision = "auth_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
