"""members and their activity periods

Revision ID: activity_0002
Revises: activity_0001
Create Date: 2026-11-22 05:33:34
"""

import sqlalchemy as sa
from alembic import op

revision = "activity_0002"
down_revision = "activity_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "members",
        sa.Column("id", sa.Integer(), nullable=False),
        # byte order on PostgreSQL whatever the server's locale: lists and cursors by id
        sa.Column(
            "external_id",
            sa.String(length=64).with_variant(sa.VARCHAR(length=64, collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column("real_name", sa.String(length=200), nullable=False),
        sa.Column("tz", sa.String(length=64), nullable=False),
        # UTC instants (servicekit.db.UtcDateTime reads them back timezone-aware)
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_members")),
        sa.UniqueConstraint("external_id", name=op.f("uq_members_external_id")),
    )
    op.create_table(
        "activity_periods",
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("start_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_time", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_activity_periods_member_id_members"),
            ondelete="CASCADE",
        ),
        # one row per period however often it is uploaded; also the chronological index
        sa.PrimaryKeyConstraint(
            "member_id", "start_time", "end_time", name=op.f("pk_activity_periods")
        ),
    )


def downgrade() -> None:
    op.drop_table("activity_periods")
    op.drop_table("members")
