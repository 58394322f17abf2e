"""scheduler_service's database models (SQLAlchemy 2 typed models).

The `scheduled_calls` row is the source of truth for a call: Redis (RQ) only carries the
reminder to look at it. Its status moves by compare-and-set (`UPDATE ... WHERE status=...`),
so two workers can never both run one call.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Update,
)
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Mapped, mapped_column, relationship

from servicekit import make_db
from servicekit.db import UtcDateTime, utcnow

db = make_db()

PENDING = "Pending"
RUNNING = "Running"
SUCCEEDED = "Succeeded"
FAILED = "Failed"
CANCELLED = "Cancelled"
STATUSES = (PENDING, RUNNING, SUCCEEDED, FAILED, CANCELLED)


class ScheduledCall(db.Model):  # type: ignore[name-defined]
    """One outbound HTTP call, due at `timestamp`, owned by the token subject that asked."""

    __tablename__ = "scheduled_calls"
    __table_args__ = (
        CheckConstraint(
            "status IN (" + ", ".join(f"'{status}'" for status in STATUSES) + ")", name="status"
        ),
        Index("ix_scheduled_calls_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_scheduled_calls_owner_timestamp", "owner", "timestamp"),
        Index("ix_scheduled_calls_owner_status", "owner", "status"),
        Index("ix_scheduled_calls_timestamp", "timestamp"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner: Mapped[str] = mapped_column(String(64))
    # The instant the caller asked for; retries and reschedules move `next_attempt_at`.
    timestamp: Mapped[datetime] = mapped_column(UtcDateTime())
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime())
    status: Mapped[str] = mapped_column(String(16), default=PENDING, server_default=PENDING)
    url: Mapped[str] = mapped_column(String(2048))
    method: Mapped[str] = mapped_column(String(10), default="GET", server_default="GET")
    headers: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    body: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    max_attempts: Mapped[int] = mapped_column(Integer)
    # While Running: which worker holds the call, since when, and until when at most.
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    history: Mapped[list[CallAttempt]] = relationship(
        back_populates="call",
        order_by="CallAttempt.number",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )

    def __repr__(self) -> str:
        return f"<ScheduledCall {self.id} {self.status} at {self.timestamp.isoformat()}>"


class CallAttempt(db.Model):  # type: ignore[name-defined]
    """One try of a call: when, how long, and the status code or the error."""

    __tablename__ = "call_attempts"
    __table_args__ = (UniqueConstraint("call_id", "number", name="uq_call_attempts_call_number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[int] = mapped_column(
        ForeignKey("scheduled_calls.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime())
    duration_ms: Mapped[float] = mapped_column(Float)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(500))
    outcome: Mapped[str] = mapped_column(String(16))

    call: Mapped[ScheduledCall] = relationship(back_populates="history")


def changed_rows(statement: Update) -> int:
    """Run an UPDATE in the current transaction; how many rows it changed (the CAS check)."""
    result = cast(CursorResult[Any], db.session.execute(statement))
    return int(result.rowcount)
