"""tickets: a stored search document with GIN indexes on PostgreSQL

The search used to match an expression index on to_tsvector(title || ' ' || description):
a list page that walks tickets newest first re-parsed each one's text. A stored generated
column holds the parsed document instead (PostgreSQL writes it with every insert and
update; it is not in the ORM model, SQLAlchemy never writes or reads it), indexed twice:
for the public list (partial, WHERE is_public) and for every other list. SQLite has no
such column; it searches by LIKE.

Adding the column rewrites the table under an exclusive lock (about a second per
100,000 tickets).

Revision ID: tickets_0003
Revises: tickets_0002
Create Date: 2026-12-07 02:50:00.000000

"""

from alembic import op

# The document of 0002's expression index, now stored (service.SEARCH_COLUMN matches it).
SEARCH_DOCUMENT = "to_tsvector('english'::regconfig, title || ' ' || description)"
OLD_INDEX = "ix_tickets_search"
SEARCH_INDEX = "ix_tickets_search"
PUBLIC_SEARCH_INDEX = "ix_tickets_search_public"

revision = "tickets_0003"
down_revision = "tickets_0002"
branch_labels = None
depends_on = None


def on_postgresql() -> bool:
    return bool(op.get_bind().dialect.name == "postgresql")


def upgrade() -> None:
    if not on_postgresql():
        return
    op.execute(f"DROP INDEX {OLD_INDEX}")
    op.execute(
        "ALTER TABLE tickets ADD COLUMN search tsvector"
        f" GENERATED ALWAYS AS ({SEARCH_DOCUMENT}) STORED"
    )
    op.execute(f"CREATE INDEX {SEARCH_INDEX} ON tickets USING gin (search)")
    op.execute(
        f"CREATE INDEX {PUBLIC_SEARCH_INDEX} ON tickets USING gin (search) WHERE is_public"
    )


def downgrade() -> None:
    if not on_postgresql():
        return
    op.execute(f"DROP INDEX {PUBLIC_SEARCH_INDEX}")
    op.execute(f"DROP INDEX {SEARCH_INDEX}")
    op.execute("ALTER TABLE tickets DROP COLUMN search")
    op.execute(f"CREATE INDEX {OLD_INDEX} ON tickets USING gin ({SEARCH_DOCUMENT})")
