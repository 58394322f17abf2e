"""activity_service's database models (SQLAlchemy 2 typed models)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Mapped, mapped_column

from servicekit import make_db
from servicekit.db import UtcDateTime, utcnow

db = make_db()

MEMBER_ID_LENGTH = 64
REAL_NAME_LENGTH = 200
ZONE_NAME_LENGTH = 64

# Members are listed and paged by their opaque id: byte order on every database, so the
# order (and the keyset cursor) does not depend on a server's locale.
MemberIdType = String(MEMBER_ID_LENGTH).with_variant(
    postgresql.VARCHAR(MEMBER_ID_LENGTH, collation="C"), "postgresql"
)


class Member(db.Model):  # type: ignore[name-defined]
    """A member as the document shows one: opaque id, name and IANA time zone."""

    __tablename__ = "members"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The document's `id` (e.g. "W012A3CDE"); the row id above never leaves the service.
    external_id: Mapped[str] = mapped_column(MemberIdType, unique=True)
    real_name: Mapped[str] = mapped_column(String(REAL_NAME_LENGTH))
    tz: Mapped[str] = mapped_column(String(ZONE_NAME_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)

    def __repr__(self) -> str:
        return f"<Member {self.external_id!r}>"


class ActivityPeriod(db.Model):  # type: ignore[name-defined]
    """One activity period of a member, as UTC instants; stored once however often sent."""

    __tablename__ = "activity_periods"

    # The key is the period itself: a period is stored once however often it is sent, and
    # the key's index lists a member's periods in chronological order. No surrogate id:
    # nothing refers to a single period, and bulk inserts skip a sequence and an index.
    member_id: Mapped[int] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )
    start_time: Mapped[datetime] = mapped_column(UtcDateTime(), primary_key=True)
    end_time: Mapped[datetime] = mapped_column(UtcDateTime(), primary_key=True)

    def __repr__(self) -> str:
        return f"<ActivityPeriod {self.member_id} {self.start_time} {self.end_time}>"
