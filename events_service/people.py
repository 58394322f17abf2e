"""Users this service refers to, checked with their owner (auth_service's user directory)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from events_service.errors import DirectoryDown, UnknownUsers
from servicekit.identity import Identity
from servicekit.users import DirectoryUnavailable, DirectoryUser, UserDirectory


@dataclass(frozen=True)
class Person:
    """A user as this service stores them: publicId and current username."""

    user_id: str
    username: str

    @classmethod
    def of(cls, user: DirectoryUser) -> Person:
        return cls(user.public_id, user.username)

    @classmethod
    def caller(cls, identity: Identity) -> Person:
        """The caller, from their verified token (no directory round trip)."""
        return cls(identity.subject, identity.username)


def resolve_users(
    directory: UserDirectory | None, usernames: Iterable[str], field: str = "username"
) -> dict[str, DirectoryUser]:
    """Every username as an active user, in one round trip to auth_service.

    Unknown names and disabled accounts: `UnknownUsers` naming them (422); the directory
    down: `DirectoryDown` (503). Always asked afresh, never from the directory's cache:
    a user deleted a moment ago, whose lifecycle event this service has already handled,
    must not be stored again from a stale answer.
    """
    names = list(dict.fromkeys(usernames))
    if directory is None:
        raise DirectoryDown()
    try:
        found = directory.lookup(names, fresh=True)
    except DirectoryUnavailable as exc:
        raise DirectoryDown() from exc
    active = {name: user for name, user in found.by_username.items() if user.is_active}
    unknown = [name for name in names if name not in active]
    if unknown:
        raise UnknownUsers(unknown, field)
    return active


def resolve_user(
    directory: UserDirectory | None, username: str, field: str = "username"
) -> DirectoryUser:
    return resolve_users(directory, [username], field)[username]
