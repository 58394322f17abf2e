"""The user lifecycle outbox: each user change writes its event in the same transaction,
and the events go to the Redis Stream `USER_EVENTS_STREAM` after the commit.

- `record_user_event` adds a row to `user_event_outbox` in the caller's transaction: the
  event exists exactly when the change was committed.
- After a commit that recorded events, `publish_pending` runs at once (best effort: when
  Redis is unavailable the rows wait); the relay (`relay.py`) publishes what is left.
- One publisher at a time: a short Redis lock (`<stream>:relay-lock`) is held while rows
  are read, added to the stream (one MULTI/EXEC) and deleted. A publisher that does not
  get the lock leaves its rows to the holder, or, when they came after the holder's
  read, to the relay's next look (`USER_EVENTS_RELAY_INTERVAL`).
- At-least-once: a publisher that dies (or loses the database) between the stream write
  and the delete leaves rows that are published again, with the same `eventId`;
  consumers deduplicate on it. Nothing is published twice otherwise.
- Order: rows are published in the order of their ids. The user's row is locked
  (SELECT ... FOR UPDATE) before its event row is written, so the events of one user
  get ids in the order their transactions commit, and reach the stream in that order.
- Retention: every XADD trims entries older than `USER_EVENTS_RETENTION` seconds
  (`MINID ~`).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Flask, current_app, has_app_context
from redis import Redis
from redis.exceptions import LockError, RedisError
from sqlalchemy import JSON, Engine, String, delete, event, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Mapped, Session, mapped_column

from auth_service.context import auth_context
from auth_service.models import User, db, new_public_id
from auth_service.settings import AuthSettings
from servicekit.db import UtcDateTime, utcnow
from servicekit.redis_connection import redis_from_url
from servicekit.replication import confirm_replicated
from servicekit.streams import entry_fields
from servicekit.users import USER_CREATED, USER_DELETED, USER_UPDATED, UserEvent

log = logging.getLogger(__name__)

BATCH_SIZE = 100
LOCK_LEASE = 30  # seconds; far longer than publishing one batch takes
PENDING = "auth.user_events_pending"  # Session.info flag: this transaction recorded events
REDIS_EXTENSION = "auth.user_events_redis"
# Redis timeouts of the publisher: short, since it also runs right after a request's commit.
CONNECT_TIMEOUT = 0.5
SOCKET_TIMEOUT = 2.0
# The directory fields a `user.updated` reports, by attribute, with their wire names.
DIRECTORY_FIELDS = {
    "username": "username",
    "first_name": "firstName",
    "last_name": "lastName",
    "email": "email",
    "college_name": "collegeName",
    "role": "role",
}


def new_event_id() -> str:
    return uuid.uuid4().hex


class OutboxEvent(db.Model):  # type: ignore[name-defined]
    """A user lifecycle event not yet on the stream; deleted once it is."""

    __tablename__ = "user_event_outbox"

    id: Mapped[int] = mapped_column(primary_key=True)  # publishing order
    event_id: Mapped[str] = mapped_column(String(32), default=new_event_id)
    type: Mapped[str] = mapped_column(String(32))
    public_id: Mapped[str] = mapped_column(String(32))
    username: Mapped[str] = mapped_column(String(64))
    # `changed` (comma-separated wire names) and `previousUsername`, when they apply.
    details: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)

    def as_event(self) -> UserEvent:
        return UserEvent(
            event_id=self.event_id,
            type=self.type,
            public_id=self.public_id,
            username=self.username,
            occurred_at=self.occurred_at,
            changed=frozenset(filter(None, self.details.get("changed", "").split(","))),
            previous_username=self.details.get("previousUsername"),
        )


# Recording, in the transaction of the change


def record_user_event(user: User, event_type: str, **details: str) -> None:
    """Add the event of a change to `user` to the current transaction (no commit)."""
    if user.id is not None:  # a user being created has no row to lock yet
        _lock_user_row(user)
    db.session.add(
        OutboxEvent(
            type=event_type, public_id=user.public_id, username=user.username, details=details
        )
    )
    db.session.info[PENDING] = True


def _lock_user_row(user: User) -> None:
    """Lock the user's row before the event row gets its id: see "Order" above. Without
    flushing the change itself, whose unique name is checked at the caller's commit.
    (SQLite ignores FOR UPDATE: there, one transaction writes at a time anyway.)"""
    with db.session.no_autoflush:
        db.session.execute(select(User.id).where(User.id == user.id).with_for_update())


def record_created(user: User) -> None:
    """Call after `db.session.add(user)`."""
    if not user.public_id:  # the column default would come at the insert, too late
        user.public_id = new_public_id()
    record_user_event(user, USER_CREATED)


def record_deleted(user: User) -> None:
    """Call after `db.session.delete(user)`."""
    record_user_event(user, USER_DELETED)


def directory_snapshot(user: User) -> dict[str, Any]:
    """The user's directory fields, to compare with after a change (`record_updated`)."""
    return {name: getattr(user, name) for name in DIRECTORY_FIELDS}


def record_updated(user: User, before: Mapping[str, Any]) -> None:
    """Record `user.updated` when a directory field differs from `before`."""
    changed = sorted(
        wire for name, wire in DIRECTORY_FIELDS.items() if getattr(user, name) != before[name]
    )
    if not changed:
        return
    details = {"changed": ",".join(changed)}
    if before["username"] != user.username:
        details["previousUsername"] = before["username"]
    record_user_event(user, USER_UPDATED, **details)


# Publishing, after the commit


@dataclass(frozen=True)
class StreamSettings:
    stream: str
    retention: int  # seconds an entry is kept (AuthSettings checks it is long enough)

    @classmethod
    def of(cls, settings: AuthSettings) -> StreamSettings:
        return cls(settings.user_events_stream, settings.user_events_retention)

    @property
    def lock_name(self) -> str:
        return f"{self.stream}:relay-lock"


def publish_pending(
    engine: Engine, redis: Redis, settings: StreamSettings, *, max_batches: int | None = None
) -> int:
    """Publish outbox rows in order, BATCH_SIZE per stream transaction, until none are
    left (or `max_batches`); 0 at once when another publisher holds the lock.

    Returns how many events it published; raises RedisError or SQLAlchemyError when
    publishing failed (what was not published stays in the outbox).
    """
    lock = redis.lock(settings.lock_name, timeout=LOCK_LEASE, blocking=False)
    if not lock.acquire():
        return 0
    published = 0
    batches = 0
    try:
        while max_batches is None or batches < max_batches:
            count = _publish_batch(engine, redis, settings)
            published += count
            batches += 1
            if count < BATCH_SIZE:
                break
    finally:
        try:
            lock.release()
        except LockError:
            log.warning("the outbox lock expired while publishing", extra={"published": published})
    return published


def _publish_batch(engine: Engine, redis: Redis, settings: StreamSettings) -> int:
    with Session(engine) as session:
        rows = session.scalars(select(OutboxEvent).order_by(OutboxEvent.id).limit(BATCH_SIZE)).all()
        events = [row.as_event() for row in rows]
        ids = [row.id for row in rows]
    if not events:
        return 0
    # No database transaction is open while Redis is written.
    oldest_kept = f"{int((time.time() - settings.retention) * 1000)}-0"
    with redis.pipeline(transaction=True) as pipeline:
        for user_event in events:
            fields = entry_fields(user_event.to_fields())
            pipeline.xadd(settings.stream, fields, minid=oldest_kept, approximate=True)
        pipeline.execute()
    # Deleted from the outbox only once a replica holds them too (when replicas are asked
    # for): a master that dies first then loses nothing the outbox no longer has.
    confirm_replicated(redis, "user events on the stream")
    with Session(engine) as session, session.begin():
        session.execute(delete(OutboxEvent).where(OutboxEvent.id.in_(ids)))
    return len(events)


def outbox_redis(app: Flask) -> Redis | None:
    """The publisher's Redis connection (pooled), or None without `REDIS_URL`."""
    url = app.config.get("REDIS_URL")
    if not url:
        return None
    client = app.extensions.get(REDIS_EXTENSION)
    if client is None:
        client = redis_from_url(
            url, socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=SOCKET_TIMEOUT
        )
        app.extensions[REDIS_EXTENSION] = client
    return client


def publish_now(app: Flask, *, max_batches: int | None = None) -> int:
    """Publish the app's pending events (in its app context); 0 without `REDIS_URL`.
    Raises RedisError or SQLAlchemyError when publishing failed."""
    redis = outbox_redis(app)
    if redis is None:
        return 0
    settings = StreamSettings.of(auth_context(app).settings)
    return publish_pending(db.engine, redis, settings, max_batches=max_batches)


@event.listens_for(db.session, "after_commit")
def _publish_after_commit(session: Session) -> None:
    """Right after a commit that recorded events, publish them (best effort)."""
    if not session.info.pop(PENDING, False) or not has_app_context():
        return
    try:
        # One batch at most in a request: a backlog is the relay's work.
        publish_now(current_app, max_batches=1)
    except (RedisError, SQLAlchemyError) as exc:
        log.warning("user events left for the relay: %s", exc)


@event.listens_for(db.session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    session.info.pop(PENDING, None)
