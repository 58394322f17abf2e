"""Row locks that serialise writers on one event or team, on SQLite and PostgreSQL.

A transaction that reads before it writes (count the organisers, then add one; read a
team's members, then register them) must hold the lock before it reads. A no-op UPDATE
takes SQLite's write lock at once (a deferred transaction only takes it at its first
write) and PostgreSQL's row lock; the `SELECT ... FOR UPDATE` that follows also waits
for a row inserted elsewhere under a foreign key to it (that insert holds a key-share
lock, which only FOR UPDATE conflicts with).
"""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy import update
from sqlalchemy.orm import Mapped, Session

from events_service.models import Event, Team

Locked = TypeVar("Locked", Event, Team)


def lock_row(session: Session, model: type[Locked], row_id: int) -> Locked | None:
    """The row, locked until the transaction ends; None when there is no such row."""
    key: Mapped[int] = model.id
    touched = session.execute(
        update(model)
        .where(key == row_id)
        .values(id=key)
        .execution_options(synchronize_session=False)
    )
    if touched.rowcount != 1:  # type: ignore[attr-defined]
        return None
    return session.get(model, row_id, populate_existing=True, with_for_update=True)
