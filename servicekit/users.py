"""Users seen from other services: the user directory client and the lifecycle events.

auth_service owns users. Another service resolves usernames or publicIds with
`UserDirectory.lookup` (auth_service's internal `POST /internal/users/lookup`, called with
this service's token), lists every user with `UserDirectory.all_users` (`GET
/internal/users`, a page at a time) and follows changes on the user lifecycle stream
(`USER_EVENTS_STREAM`, consumed with `servicekit.streams`), whose entries `UserEvent`
reads.

The directory keeps what it learnt for a short time (`ttl`, per process): a user disabled
or renamed a moment ago may still be seen as before for that long. Pass `fresh=True`
where that matters, or `forget` users when their events arrive. Unknown names are never
cached, so a user who has just registered is found at once.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import requests
from flask import Flask, current_app

from servicekit.config import env, env_float, service_url
from servicekit.http import ServiceClient, ServiceTokenSource

LOOKUP_PATH = "/internal/users/lookup"
LIST_PATH = "/internal/users"
MAX_LOOKUP = 500  # names (usernames and publicIds together) per lookup request
DEFAULT_LIST_PAGE = 500  # users per page of the listing
MAX_LIST_PAGE = 1000
MAX_NAME_LENGTH = 256  # longer strings are no user's name: never sent
DEFAULT_TTL = 30.0
DEFAULT_MAX_ENTRIES = 10_000
DEFAULT_TIMEOUT = (1.0, 3.0)  # (connect, read) seconds

DEFAULT_USER_STREAM = "flotilla:users"
USER_CREATED = "user.created"
USER_UPDATED = "user.updated"
USER_DISABLED = "user.disabled"
USER_ENABLED = "user.enabled"
USER_DELETED = "user.deleted"
USER_EVENT_TYPES = (USER_CREATED, USER_UPDATED, USER_DISABLED, USER_ENABLED, USER_DELETED)


def user_stream() -> str:
    """The name of the user lifecycle stream: `USER_EVENTS_STREAM`, else `flotilla:users`."""
    return env("USER_EVENTS_STREAM", DEFAULT_USER_STREAM) or DEFAULT_USER_STREAM


# Lifecycle events


@dataclass(frozen=True)
class UserEvent:
    """One entry of the user lifecycle stream.

    `changed` names the directory fields a `user.updated` changed (wire names, e.g.
    "collegeName"); `previous_username` is set when the user was renamed.
    """

    event_id: str
    type: str
    public_id: str
    username: str
    occurred_at: datetime
    changed: frozenset[str] = frozenset()
    previous_username: str | None = None

    @classmethod
    def from_fields(cls, fields: Mapping[str, str]) -> UserEvent:
        """Read a stream entry's fields; ValueError when it is not a user event."""
        try:
            event_type = fields["type"]
            if event_type not in USER_EVENT_TYPES:
                raise ValueError(f"unknown user event type {event_type!r}")
            changed = fields.get("changed", "")
            return cls(
                event_id=fields["eventId"],
                type=event_type,
                public_id=fields["publicId"],
                username=fields["username"],
                occurred_at=datetime.fromisoformat(fields["occurredAt"]),
                changed=frozenset(name for name in changed.split(",") if name),
                previous_username=fields.get("previousUsername") or None,
            )
        except KeyError as exc:
            raise ValueError(f"user event without {exc.args[0]!r}") from None

    def to_fields(self) -> dict[str, str]:
        """The entry's fields, as auth_service writes them."""
        fields = {
            "eventId": self.event_id,
            "type": self.type,
            "publicId": self.public_id,
            "username": self.username,
            "occurredAt": self.occurred_at.isoformat(timespec="milliseconds"),
        }
        if self.changed:
            fields["changed"] = ",".join(sorted(self.changed))
        if self.previous_username is not None:
            fields["previousUsername"] = self.previous_username
        return fields


# The directory


class DirectoryUnavailable(Exception):
    """auth_service did not answer a lookup (unreachable, timed out, refused this
    service's credentials, or failed): callers answer 503."""


@dataclass(frozen=True)
class DirectoryUser:
    public_id: str
    username: str
    first_name: str
    last_name: str
    email: str | None
    college_name: str
    role: str
    is_active: bool
    # Optional on the wire: a directory that does not publish them answers without.
    date_joined: datetime | None = None
    last_login: datetime | None = None  # the last password login; None before the first

    @classmethod
    def from_wire(cls, body: Mapping[str, Any]) -> DirectoryUser:
        return cls(
            public_id=str(body["publicId"]),
            username=str(body["username"]),
            first_name=str(body["firstName"]),
            last_name=str(body["lastName"]),
            email=None if body["email"] is None else str(body["email"]),
            college_name=str(body["collegeName"]),
            role=str(body["role"]),
            is_active=bool(body["isActive"]),
            date_joined=_instant(body.get("dateJoined")),
            last_login=_instant(body.get("lastLogin")),
        )


def _instant(value: Any) -> datetime | None:
    """An ISO-8601 time of the directory, or None (absent or null)."""
    return None if value is None else datetime.fromisoformat(str(value))


@dataclass(frozen=True)
class Lookup:
    """The answer to one lookup: the users found, by the name they were asked by, and
    the names no user has (in the order asked)."""

    by_username: Mapping[str, DirectoryUser] = field(default_factory=dict)
    by_public_id: Mapping[str, DirectoryUser] = field(default_factory=dict)
    unknown_usernames: tuple[str, ...] = ()
    unknown_public_ids: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        """Whether every name asked for is a user."""
        return not self.unknown_usernames and not self.unknown_public_ids

    @property
    def unknown(self) -> tuple[str, ...]:
        """Every unknown name, usernames first (for an error message naming them)."""
        return self.unknown_usernames + self.unknown_public_ids


USERNAME = "username"
PUBLIC_ID = "publicId"
CacheKey = tuple[str, str]


class DirectoryCache:
    """Users by username and by publicId for `ttl` seconds; at most `max_entries` keys,
    the least recently used go first. Thread-safe."""

    def __init__(self, ttl: float, max_entries: int, clock: Callable[[], float]) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock = clock
        self._entries: OrderedDict[CacheKey, tuple[float, DirectoryUser]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: CacheKey) -> DirectoryUser | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            expires_at, user = entry
            if self.clock() >= expires_at:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return user

    def put(self, users: Iterable[DirectoryUser]) -> None:
        expires_at = self.clock() + self.ttl
        with self._lock:
            for user in users:
                for key in ((USERNAME, user.username), (PUBLIC_ID, user.public_id)):
                    self._entries[key] = (expires_at, user)
                    self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def forget(self, keys: Iterable[CacheKey]) -> None:
        """Drop these keys, and every key of the users they name."""
        with self._lock:
            for key in list(keys):
                entry = self._entries.pop(key, None)
                if entry is not None:
                    user = entry[1]
                    self._entries.pop((USERNAME, user.username), None)
                    self._entries.pop((PUBLIC_ID, user.public_id), None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


class UserDirectory:
    """Resolves usernames and publicIds through auth_service, with a short cache.

    `UserDirectory.for_service("events", secret)` builds one with its own service token
    source; pass a `ServiceClient` for auth_service to share one.
    """

    def __init__(
        self,
        client: ServiceClient,
        *,
        ttl: float = DEFAULT_TTL,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.cache = DirectoryCache(ttl, max_entries, clock)

    @classmethod
    def for_service(
        cls,
        service: str,
        secret: str,
        *,
        auth_url: str | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        ttl: float = DEFAULT_TTL,
        max_entries: int = DEFAULT_MAX_ENTRIES,
    ) -> UserDirectory:
        """The directory as `service` sees it, proving `secret` (SERVICE_SECRET) for its
        service tokens; auth_service at `auth_url` (default: AUTH_SERVICE_URL)."""
        base_url = auth_url or service_url("auth")
        tokens = ServiceTokenSource(service, secret, base_url)
        client = ServiceClient("auth", base_url=base_url, tokens=tokens, timeout=timeout)
        return cls(client, ttl=ttl, max_entries=max_entries)

    def lookup(
        self,
        usernames: Iterable[str] = (),
        public_ids: Iterable[str] = (),
        *,
        fresh: bool = False,
    ) -> Lookup:
        """Resolve these names: cached answers first (unless `fresh`), then one request for
        every name not cached (more only beyond MAX_LOOKUP names). Matching is exact: a
        username differing in case is another name. Raises DirectoryUnavailable."""
        wanted = [(USERNAME, name) for name in dict.fromkeys(usernames)]
        wanted += [(PUBLIC_ID, name) for name in dict.fromkeys(public_ids)]
        found: dict[CacheKey, DirectoryUser] = {}
        missing: list[CacheKey] = []
        for key in wanted:
            cached = None if fresh else self.cache.get(key)
            if cached is not None:
                found[key] = cached
            elif 0 < len(key[1]) <= MAX_NAME_LENGTH:
                missing.append(key)
        for start in range(0, len(missing), MAX_LOOKUP):
            found.update(self._fetch(missing[start : start + MAX_LOOKUP]))
        return _answer(wanted, found)

    def user(self, username: str, *, fresh: bool = False) -> DirectoryUser | None:
        """One user by username, or None when there is no such user."""
        return self.lookup([username], fresh=fresh).by_username.get(username)

    def forget(self, *, usernames: Iterable[str] = (), public_ids: Iterable[str] = ()) -> None:
        """Drop what the cache holds about these users (e.g. on their lifecycle events)."""
        keys = [(USERNAME, name) for name in usernames]
        self.cache.forget(keys + [(PUBLIC_ID, name) for name in public_ids])

    def forget_event(self, event: UserEvent) -> None:
        """Drop what the cache holds about the user of this event."""
        names = [event.username]
        if event.previous_username is not None:
            names.append(event.previous_username)
        self.forget(usernames=names, public_ids=[event.public_id])

    def _fetch(self, keys: list[CacheKey]) -> dict[CacheKey, DirectoryUser]:
        users = self._request_users(
            {
                "usernames": [name for kind, name in keys if kind == USERNAME],
                "publicIds": [name for kind, name in keys if kind == PUBLIC_ID],
            }
        )
        self.cache.put(users)
        found: dict[CacheKey, DirectoryUser] = {}
        for user in users:
            found[(USERNAME, user.username)] = user
            found[(PUBLIC_ID, user.public_id)] = user
        return found

    def all_users(self, *, page_size: int = DEFAULT_LIST_PAGE) -> Iterator[DirectoryUser]:
        """Every user, in publicId order, fetched a page (`page_size`, at most
        MAX_LIST_PAGE) at a time as the iteration goes on, e.g. to fill a copy of users.
        Raises DirectoryUnavailable when a page does not come (what was yielded before
        stands). Users are not cached: a listing is read once."""
        params: dict[str, str | int] = {"limit": min(max(page_size, 1), MAX_LIST_PAGE)}
        while True:
            body = self._answer_of(self.client.get, LIST_PATH, params=params)
            try:
                users = [DirectoryUser.from_wire(user) for user in body["users"]]
                after = body["next"]
            except (ValueError, KeyError, TypeError) as exc:
                raise DirectoryUnavailable(
                    f"auth_service's listing answer is malformed: {exc}"
                ) from exc
            yield from users
            if after is None:
                return
            params["after"] = str(after)

    def _request_users(self, body: dict[str, list[str]]) -> list[DirectoryUser]:
        answer = self._answer_of(self.client.post, LOOKUP_PATH, json=body)
        try:
            return [DirectoryUser.from_wire(user) for user in answer["users"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise DirectoryUnavailable(f"auth_service's lookup answer is malformed: {exc}") from exc

    @staticmethod
    def _answer_of(
        call: Callable[..., requests.Response], path: str, **kwargs: Any
    ) -> Mapping[str, Any]:
        """The JSON object auth_service answered; DirectoryUnavailable when it did not
        answer 200 with one."""
        try:
            response = call(path, **kwargs)
        except (requests.RequestException, ValueError, KeyError) as exc:
            # ValueError, KeyError: the service token answer was malformed.
            raise DirectoryUnavailable(f"auth_service did not answer: {exc}") from exc
        if response.status_code != 200:
            raise DirectoryUnavailable(
                f"auth_service answered {path} with {response.status_code}: {response.text[:200]}"
            )
        try:
            answer = response.json()
        except ValueError as exc:
            raise DirectoryUnavailable(f"auth_service's answer is not JSON: {exc}") from exc
        if not isinstance(answer, Mapping):
            raise DirectoryUnavailable("auth_service's answer is not a JSON object")
        return answer


def _answer(wanted: list[CacheKey], found: Mapping[CacheKey, DirectoryUser]) -> Lookup:
    by_kind: dict[str, dict[str, DirectoryUser]] = {USERNAME: {}, PUBLIC_ID: {}}
    unknown: dict[str, list[str]] = {USERNAME: [], PUBLIC_ID: []}
    for kind, name in wanted:
        user = found.get((kind, name))
        if user is None:
            unknown[kind].append(name)
        else:
            by_kind[kind][name] = user
    return Lookup(
        by_username=by_kind[USERNAME],
        by_public_id=by_kind[PUBLIC_ID],
        unknown_usernames=tuple(unknown[USERNAME]),
        unknown_public_ids=tuple(unknown[PUBLIC_ID]),
    )


EXTENSION = "servicekit.users"


def user_directory() -> UserDirectory:
    """The current app's directory: as its `SERVICE_NAME`, proving its `SERVICE_SECRET`;
    `USER_DIRECTORY_TTL` seconds of caching (default 30). Built on first use."""
    directory = current_app.extensions.get(EXTENSION)
    if directory is None:
        config = current_app.config
        secret = config.get("SERVICE_SECRET")
        if not secret:
            raise DirectoryUnavailable("SERVICE_SECRET is not configured")
        directory = UserDirectory.for_service(
            str(config["SERVICE_NAME"]),
            str(secret),
            auth_url=config.get("AUTH_SERVICE_URL"),
            ttl=float(
                config.get("USER_DIRECTORY_TTL") or env_float("USER_DIRECTORY_TTL", DEFAULT_TTL)
            ),
        )
        current_app.extensions[EXTENSION] = directory
    return directory


def optional_user_directory(app: Flask, without: str) -> UserDirectory | None:
    """The app's directory (call in its app context), or None when `SERVICE_SECRET` is
    not set: then `without` (what the service does instead) is logged once at start."""
    if not app.config.get("SERVICE_SECRET"):
        app.logger.warning("SERVICE_SECRET is not set: %s", without)
        return None
    return user_directory()
