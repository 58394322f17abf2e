"""The users copy: this service's row for a caller who writes before the lifecycle stream
has told this service about them."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from datapoints_service.models import User
from servicekit import Identity


def ensure_user(session: Session, identity: Identity) -> int:
    """The caller's id here; a row is added (not committed) from their token when the
    copy does not hold them yet (the stream fills in the rest later)."""
    found = session.scalar(select(User.id).where(User.public_id == identity.subject))
    if found is not None:
        return int(found)
    user = User(
        public_id=identity.subject,
        username=identity.username,
        is_staff=identity.is_staff,
        is_superuser=identity.is_superuser,
    )
    session.add(user)
    session.flush()
    return int(user.id)
