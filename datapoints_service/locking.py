"""Every write transaction of this service takes the database's write lock before its
first read.

On SQLite a transaction that reads and then writes fails with "database is locked" when
another writer committed in between (in WAL mode its read snapshot cannot become a write
one), and until its first write it reads outside the one-writer lock, so two writers
could both pass a check (a cycle, a duplicate) that only one of them should. A no-op
UPDATE as the first statement takes the write lock at once: writers queue (for up to
the connection's busy timeout) and each reads what the previous one committed.
PostgreSQL needs nothing here: at READ COMMITTED each statement sees the latest commits,
unique constraints catch duplicates, and region writes also hold the tree's advisory lock
(`tree.lock`).
"""

from __future__ import annotations

from sqlalchemy import false, update
from sqlalchemy.orm import Session

from datapoints_service.models import User


def take_write_lock(session: Session) -> None:
    """Call first in a write transaction: before it, nothing is read."""
    if session.get_bind().dialect.name != "sqlite":
        return
    session.execute(
        update(User).where(false()).values(id=User.id).execution_options(synchronize_session=False)
    )
