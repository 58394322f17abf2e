"""events_service's database models (SQLAlchemy 2 typed models).

Users belong to auth_service: this service keeps, for every user it refers to, the user's
publicId (what identifies them; a rename keeps it) and their username (what the wire
shows; updated when the lifecycle stream says they were renamed).

Seats: `Event.seats_taken` counts the registrations holding a seat (a team takes one).
A registration takes a seat with one conditional `UPDATE events SET seats_taken =
seats_taken + 1 WHERE id = :id AND (capacity IS NULL OR seats_taken < capacity)`: the
database serialises concurrent writers on the row, so no seat is sold twice on SQLite or
PostgreSQL. Uniqueness (one registration per team or user and event; one registration per
participant and event) is enforced by unique constraints, not by reading first.
"""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Table,
    Text,
    Time,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from servicekit import make_db
from servicekit.db import UtcDateTime, utcnow

db = make_db()

NAME_LENGTH = 100  # categories, tags, teams
EVENT_NAME_LENGTH = 200
TEXT_LENGTH = 10_000  # descriptions (checked by the schemas)
PUBLIC_ID_LENGTH = 32
USER_ID_LENGTH = 64  # auth_service's publicId
USERNAME_LENGTH = 150
ROLE_LENGTH = 100
URL_LENGTH = 500
STATUS_LENGTH = 20

# Registration and invitation states, as the document spells them.
CONFIRMED = "confirmed"
PAYMENT_PENDING = "payment pending"
WAITING = "waiting"
REGISTRATION_STATUSES = (CONFIRMED, PAYMENT_PENDING, WAITING)
PENDING, ACCEPTED, REJECTED = "pending", "accepted", "rejected"
INVITATION_STATUSES = (PENDING, ACCEPTED, REJECTED)
OTHERS = "Others"  # the category every event without one gets; it always exists


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


event_categories = Table(
    "event_categories",
    db.metadata,
    Column("event_id", ForeignKey("events.id", ondelete="CASCADE"), primary_key=True),
    Column("category_id", ForeignKey("categories.id"), primary_key=True, index=True),
)

event_tags = Table(
    "event_tags",
    db.metadata,
    Column("event_id", ForeignKey("events.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", ForeignKey("tags.id"), primary_key=True, index=True),
)


class Category(db.Model):  # type: ignore[name-defined]
    """What kind of event it is (Hackathon, Workshop, ...). `name_key` is the name
    folded for case-insensitive uniqueness."""

    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    name_key: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class Tag(db.Model):  # type: ignore[name-defined]
    """A small highlight of an event (Free, Difficult, ...)."""

    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    name_key: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class Event(db.Model):  # type: ignore[name-defined]
    __tablename__ = "events"
    __table_args__ = (
        CheckConstraint("min_size >= 1 AND max_size >= min_size", name="team_sizes"),
        CheckConstraint("capacity IS NULL OR capacity >= 0", name="capacity"),
        CheckConstraint("seats_taken >= 0", name="seats_taken"),
        Index("ix_events_date_id", "date", "time", "id"),
        Index("ix_events_name_key_id", "name_key", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(PUBLIC_ID_LENGTH), unique=True)
    name: Mapped[str] = mapped_column(String(EVENT_NAME_LENGTH))
    name_key: Mapped[str] = mapped_column(String(EVENT_NAME_LENGTH))  # for ordering by name
    description: Mapped[str] = mapped_column(Text, default="")
    date: Mapped[date] = mapped_column(Date)
    time: Mapped[time] = mapped_column(Time)
    venue: Mapped[str] = mapped_column(String(EVENT_NAME_LENGTH), default="")
    fees: Mapped[Decimal] = mapped_column(Numeric(12, 2), default=Decimal(0))
    prize: Mapped[list[str]] = mapped_column(JSON, default=list)
    team_event: Mapped[bool] = mapped_column(Boolean, default=False)
    min_size: Mapped[int] = mapped_column(Integer, default=1)
    max_size: Mapped[int] = mapped_column(Integer, default=1)
    rules: Mapped[list[str]] = mapped_column(JSON, default=list)
    faq: Mapped[list[Any]] = mapped_column(JSON, default=list)
    capacity: Mapped[int | None] = mapped_column(Integer, nullable=True)  # None: unlimited
    seats_taken: Mapped[int] = mapped_column(Integer, default=0)
    registration_opens: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    registration_closes: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    picture_url: Mapped[str | None] = mapped_column(String(URL_LENGTH), nullable=True)
    logo_url: Mapped[str | None] = mapped_column(String(URL_LENGTH), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)

    categories: Mapped[list[Category]] = relationship(
        secondary=event_categories, order_by=Category.name_key
    )
    tags: Mapped[list[Tag]] = relationship(secondary=event_tags, order_by=Tag.name_key)


class Team(db.Model):  # type: ignore[name-defined]
    """A leader and the members who accepted their invitations; `teamid` is str(id)."""

    __tablename__ = "teams"
    __table_args__ = (Index("ix_teams_leader_id", "leader_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    leader_id: Mapped[str] = mapped_column(String(USER_ID_LENGTH))
    leader_username: Mapped[str] = mapped_column(String(USERNAME_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)

    members: Mapped[list[TeamMember]] = relationship(
        back_populates="team",
        cascade="all, delete-orphan",
        order_by="TeamMember.joined_at, TeamMember.id",
    )
    invitations: Mapped[list[Invitation]] = relationship(
        back_populates="team", cascade="all, delete-orphan", order_by="Invitation.id"
    )


class TeamMember(db.Model):  # type: ignore[name-defined]
    """A user who accepted an invitation (the leader is not a row here)."""

    __tablename__ = "team_members"
    __table_args__ = (
        UniqueConstraint("team_id", "user_id"),
        Index("ix_team_members_user_id", "user_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(String(USER_ID_LENGTH))
    username: Mapped[str] = mapped_column(String(USERNAME_LENGTH))
    joined_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)

    team: Mapped[Team] = relationship(back_populates="members")


class Invitation(db.Model):  # type: ignore[name-defined]
    __tablename__ = "invitations"
    __table_args__ = (
        UniqueConstraint("team_id", "user_id"),
        Index("ix_invitations_user_id", "user_id"),
        CheckConstraint(_in("status", INVITATION_STATUSES), name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(String(USER_ID_LENGTH))
    username: Mapped[str] = mapped_column(String(USERNAME_LENGTH))
    status: Mapped[str] = mapped_column(String(STATUS_LENGTH), default=PENDING)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)

    team: Mapped[Team] = relationship(back_populates="invitations")


class Registration(db.Model):  # type: ignore[name-defined]
    """A user (single event) or a team (team event) registered for an event.

    `holds_seat` is true for `confirmed` and `payment pending`, false for `waiting`; the
    waiting list is the waiting registrations in `id` order (order of arrival).
    """

    __tablename__ = "registrations"
    __table_args__ = (
        # Named: the convention would give both the name of their first column.
        UniqueConstraint("event_id", "team_id", name="uq_registrations_event_id_team_id"),
        UniqueConstraint("event_id", "user_id", name="uq_registrations_event_id_user_id"),
        Index("ix_registrations_event_waiting", "event_id", "holds_seat", "id"),
        Index("ix_registrations_team_id", "team_id"),
        CheckConstraint(_in("status", REGISTRATION_STATUSES), name="status"),
        CheckConstraint("(team_id IS NULL) <> (user_id IS NULL)", name="team_or_user"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    team_id: Mapped[int | None] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), nullable=True
    )
    user_id: Mapped[str | None] = mapped_column(String(USER_ID_LENGTH), nullable=True)
    username: Mapped[str] = mapped_column(String(USERNAME_LENGTH))  # who registered it
    status: Mapped[str] = mapped_column(String(STATUS_LENGTH))
    holds_seat: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)

    participants: Mapped[list[Participant]] = relationship(
        back_populates="registration", cascade="all, delete-orphan", order_by="Participant.id"
    )


class Participant(db.Model):  # type: ignore[name-defined]
    """Who a registration brings to the event: the user, or the team's leader and members.

    Unique per event: nobody is registered for one event twice, through two teams or
    alone and in a team.
    """

    __tablename__ = "participants"
    __table_args__ = (
        UniqueConstraint("event_id", "user_id"),
        Index("ix_participants_user_id", "user_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    registration_id: Mapped[int] = mapped_column(
        ForeignKey("registrations.id", ondelete="CASCADE"), index=True
    )
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(String(USER_ID_LENGTH))
    username: Mapped[str] = mapped_column(String(USERNAME_LENGTH))

    registration: Mapped[Registration] = relationship(back_populates="participants")


class Organiser(db.Model):  # type: ignore[name-defined]
    __tablename__ = "organisers"
    __table_args__ = (
        UniqueConstraint("event_id", "user_id"),
        Index("ix_organisers_user_id", "user_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(String(USER_ID_LENGTH))
    username: Mapped[str] = mapped_column(String(USERNAME_LENGTH))
    role: Mapped[str] = mapped_column(String(ROLE_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class Volunteer(db.Model):  # type: ignore[name-defined]
    __tablename__ = "volunteers"
    __table_args__ = (
        UniqueConstraint("event_id", "user_id"),
        Index("ix_volunteers_user_id", "user_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(String(USER_ID_LENGTH))
    username: Mapped[str] = mapped_column(String(USERNAME_LENGTH))
    tasks: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class HandledUserEvent(db.Model):  # type: ignore[name-defined]
    """Lifecycle-stream entries already applied, by the stream's event id: a redelivered
    entry changes nothing (written in the same transaction as its effects)."""

    __tablename__ = "handled_user_events"

    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    handled_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
