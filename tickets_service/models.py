"""tickets_service's database models (SQLAlchemy 2 typed models).

Users belong to auth_service: a ticket keeps its opener's publicId (what identifies them;
a rename keeps it) and username (what the wire shows, taken from the opener's token and
updated when the lifecycle stream says they were renamed). When a user is deleted, their
public tickets, replies and solutions stay with both columns null: the wire shows
`deleted-user`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from servicekit import make_db
from servicekit.db import POSTGRESQL_ONLY, UtcDateTime, utcnow

db = make_db()

TITLE_LENGTH = 200
DESCRIPTION_LENGTH = 10_000
CONTENT_LENGTH = 10_000  # a reply or a solution
TOPIC_LENGTH = 100
USER_ID_LENGTH = 64  # auth_service's publicId
USERNAME_LENGTH = 150

# Full text search on PostgreSQL (migration 0003): a stored generated `tsvector` column
# and its GIN indexes, kept out of the model so that SQLAlchemy never writes or loads the
# column and SQLite (which has none; it searches by LIKE) is unaffected. Listed in the
# table's info (servicekit.db.POSTGRESQL_ONLY) so that schema comparisons skip them.
SEARCH_COLUMN = "search"
SEARCH_INDEXES = ("ix_tickets_search", "ix_tickets_search_public")


class Ticket(db.Model):  # type: ignore[name-defined]
    __tablename__ = "tickets"
    __table_args__ = (
        # Every list is newest first (by id) within its filter.
        Index("ix_tickets_is_public_id", "is_public", "id"),
        Index("ix_tickets_opener_username_id", "opener_username", "id"),
        {"info": {POSTGRESQL_ONLY: (SEARCH_COLUMN, *SEARCH_INDEXES)}},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(TITLE_LENGTH))
    description: Mapped[str] = mapped_column(Text)
    topic: Mapped[str] = mapped_column(String(TOPIC_LENGTH), index=True)
    is_public: Mapped[bool] = mapped_column(Boolean)
    # Null once the opener's account is deleted (a public ticket outlives it).
    opener_id: Mapped[str | None] = mapped_column(String(USER_ID_LENGTH), index=True)
    opener_username: Mapped[str | None] = mapped_column(String(USERNAME_LENGTH))
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    solved: Mapped[bool] = mapped_column(Boolean, default=False)
    solution: Mapped[str | None] = mapped_column(Text)
    solver_id: Mapped[str | None] = mapped_column(String(USER_ID_LENGTH), index=True)
    solver_username: Mapped[str | None] = mapped_column(String(USERNAME_LENGTH))
    solved_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    comments: Mapped[list[Comment]] = relationship(
        back_populates="ticket",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="Comment.id",
    )


class Comment(db.Model):  # type: ignore[name-defined]
    """A reply in a ticket's thread (a solution joins the thread as one too)."""

    __tablename__ = "comments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    author_id: Mapped[str | None] = mapped_column(String(USER_ID_LENGTH), index=True)
    author_username: Mapped[str | None] = mapped_column(String(USERNAME_LENGTH))
    content: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)

    ticket: Mapped[Ticket] = relationship(back_populates="comments")

    __table_args__ = (Index("ix_comments_ticket_id_id", "ticket_id", "id"),)


class HandledUserEvent(db.Model):  # type: ignore[name-defined]
    """Lifecycle-stream entries already applied, by the stream's event id: a redelivered
    entry changes nothing (written in the same transaction as its effects)."""

    __tablename__ = "handled_user_events"

    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    handled_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
