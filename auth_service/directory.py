"""The user directory: what other services may know about users, resolved in batches.

A name matches exactly, as everywhere in auth_service (`alice` and `Alice` are two
names). One query resolves a whole batch of usernames and publicIds; names no user has
are answered as unknown, so the caller can name them in its own answer. A service that
keeps a copy of users fills it by listing them all, a page at a time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select

from auth_service.models import User, db

DIRECTORY_COLUMNS = (
    User.public_id,
    User.username,
    User.first_name,
    User.last_name,
    User.email,
    User.college_name,
    User.role,
    User.is_active,
    User.date_joined,
    User.last_login,
)


@dataclass(frozen=True)
class DirectoryLookup:
    users: list[Any]  # rows with the attributes of DIRECTORY_COLUMNS
    unknown_usernames: list[str]
    unknown_public_ids: list[str]


@dataclass(frozen=True)
class DirectoryPage:
    users: list[Any]  # rows with the attributes of DIRECTORY_COLUMNS
    next_after: str | None  # the cursor of the next page; None on the last one


def list_users(after: str | None, limit: int) -> DirectoryPage:
    """A page of every user, in publicId order, after the publicId `after` (which need
    not be a user any more). Keyset on the unique (so indexed) publicId: a page costs
    the same wherever it starts, and a user deleted between two pages moves no one."""
    query = select(*DIRECTORY_COLUMNS).order_by(User.public_id).limit(limit + 1)
    if after is not None:
        query = query.where(User.public_id > after)
    rows = list(db.session.execute(query).all())
    more = len(rows) > limit
    users = rows[:limit]
    return DirectoryPage(users=users, next_after=users[-1].public_id if more else None)


def lookup_users(usernames: Sequence[str], public_ids: Sequence[str]) -> DirectoryLookup:
    """The users these names belong to (each once, in sign-up order), and the names
    (each once, in the order given) no user has."""
    names, ids = _storable(usernames), _storable(public_ids)
    conditions = []
    if names:
        conditions.append(User.username.in_(names))
    if ids:
        conditions.append(User.public_id.in_(ids))
    rows = (
        db.session.execute(
            select(*DIRECTORY_COLUMNS).where(or_(*conditions)).order_by(User.id)
        ).all()
        if conditions
        else []
    )
    found_names = {row.username for row in rows}
    found_ids = {row.public_id for row in rows}
    return DirectoryLookup(
        users=list(rows),
        unknown_usernames=[name for name in dict.fromkeys(usernames) if name not in found_names],
        unknown_public_ids=[name for name in dict.fromkeys(public_ids) if name not in found_ids],
    )


def _storable(names: Iterable[str]) -> list[str]:
    """The distinct names a column could hold. A NUL character, or half of a surrogate
    pair, is in no stored name, and PostgreSQL refuses such a parameter outright."""
    return [name for name in dict.fromkeys(names) if name and _is_text(name)]


def _is_text(name: str) -> bool:
    if "\x00" in name:
        return False
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
