"""tickets, their comments, handled user events; full text search on PostgreSQL

Revision ID: tickets_0002
Revises: tickets_0001
Create Date: 2026-12-07 01:51:17.004407

"""

import sqlalchemy as sa
from alembic import op

# The expression searches matched against until migration 0003 stored it in a column
# (PostgreSQL only; SQLite searches by LIKE).
SEARCH_INDEX = "ix_tickets_search"
SEARCH_DOCUMENT = "to_tsvector('english'::regconfig, title || ' ' || description)"

revision = "tickets_0002"
down_revision = "tickets_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "handled_user_events",
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("handled_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_handled_user_events")),
    )
    op.create_table(
        "tickets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("topic", sa.String(length=100), nullable=False),
        sa.Column("is_public", sa.Boolean(), nullable=False),
        sa.Column("opener_id", sa.String(length=64), nullable=True),
        sa.Column("opener_username", sa.String(length=150), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("solved", sa.Boolean(), nullable=False),
        sa.Column("solution", sa.Text(), nullable=True),
        sa.Column("solver_id", sa.String(length=64), nullable=True),
        sa.Column("solver_username", sa.String(length=150), nullable=True),
        sa.Column("solved_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tickets")),
    )
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tickets_opener_id"), ["opener_id"], unique=False)
        batch_op.create_index(
            "ix_tickets_opener_username_id", ["opener_username", "id"], unique=False
        )
        batch_op.create_index("ix_tickets_is_public_id", ["is_public", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_tickets_solver_id"), ["solver_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_tickets_topic"), ["topic"], unique=False)

    op.create_table(
        "comments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.String(length=64), nullable=True),
        sa.Column("author_username", sa.String(length=150), nullable=True),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name=op.f("fk_comments_ticket_id_tickets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_comments")),
    )
    with op.batch_alter_table("comments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_comments_author_id"), ["author_id"], unique=False)
        batch_op.create_index("ix_comments_ticket_id_id", ["ticket_id", "id"], unique=False)

    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"CREATE INDEX {SEARCH_INDEX} ON tickets USING gin ({SEARCH_DOCUMENT})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP INDEX {SEARCH_INDEX}")
    with op.batch_alter_table("comments", schema=None) as batch_op:
        batch_op.drop_index("ix_comments_ticket_id_id")
        batch_op.drop_index(batch_op.f("ix_comments_author_id"))

    op.drop_table("comments")
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tickets_topic"))
        batch_op.drop_index(batch_op.f("ix_tickets_solver_id"))
        batch_op.drop_index("ix_tickets_is_public_id")
        batch_op.drop_index("ix_tickets_opener_username_id")
        batch_op.drop_index(batch_op.f("ix_tickets_opener_id"))

    op.drop_table("tickets")
    op.drop_table("handled_user_events")
