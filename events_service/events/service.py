"""Events: created, edited and deleted by staff, read by anyone, listed for signed-in users.

Input arrives loaded by schemas.py (attribute names); the rules that need the settings,
the stored event or the catalogue are here. Every write is one transaction: a refusal
leaves nothing behind.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any, BinaryIO, Protocol, TypeVar, cast

from sqlalchemy import Select, delete, exists, func, intersect, select, update
from sqlalchemy.orm import Session, scoped_session, selectinload

from events_service.catalogue.schemas import name_key
from events_service.errors import EventNotFound
from events_service.models import (
    EVENT_NAME_LENGTH,
    OTHERS,
    Category,
    Event,
    Registration,
    Tag,
    event_categories,
    event_tags,
)
from events_service.seats import fill_seats
from events_service.settings import EventsSettings
from servicekit.db import utcnow
from servicekit.errors import DomainError
from servicekit.pagination import Page, Window

DbSession = Session | scoped_session[Any]
Entry = TypeVar("Entry", Category, Tag)

PUBLIC_ID_BYTES = 12  # 96 random bits: 16 URL-safe characters
# What an event gets for each key the create payload leaves out.
CREATE_DEFAULTS: dict[str, Any] = {
    "description": "",
    "venue": "",
    "fees": Decimal(0),
    "prize": [],
    "team_event": False,
    "rules": [],
    "faq": [],
    "capacity": None,
    "registration_opens": None,
    "registration_closes": None,
}
# Columns a payload sets as they are (sizes, capacity, categories and tags have rules).
PLAIN_COLUMNS = (
    "name",
    "description",
    "date",
    "time",
    "venue",
    "fees",
    "prize",
    "team_event",
    "rules",
    "faq",
    "registration_opens",
    "registration_closes",
)
ORDERS = {
    "date": (Event.date, Event.time, Event.id),
    "-date": (Event.date.desc(), Event.time.desc(), Event.id.desc()),
    "name": (Event.name_key, Event.id),
    "-name": (Event.name_key.desc(), Event.id.desc()),
}


class InvalidEvent(DomainError):
    """A value the schema let through that the event's other values or the settings
    refuse: `InvalidEvent({"maxSize": "at most 100"})`."""

    status, code, message = 400, "validation_error", "invalid input"

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(errors=errors)


class UnknownNames(DomainError):
    """Categories or tags that do not exist: `UnknownNames("category", ["Quiz"])`."""

    status = 422

    def __init__(self, field: str, names: Sequence[str]) -> None:
        listed = ", ".join(repr(name) for name in names)
        noun = "category" if field == "category" else "tag"
        self.code = f"unknown_{noun}"
        super().__init__(f"no such {noun}: {listed}", errors={field: f"unknown: {listed}"})


class CapacityBelowSeats(DomainError):
    status, code = 422, "capacity_below_seats"

    def __init__(self, capacity: int, seats_taken: int) -> None:
        super().__init__(
            f"capacity {capacity} is below the {seats_taken} seats already taken: "
            "cancel registrations first",
            errors={"capacity": f"at least {seats_taken} (seats taken)"},
        )


class TeamEventFixed(DomainError):
    status, code = 422, "has_registrations"
    message = "the event has registrations: whether it is a team event cannot change"

    def __init__(self) -> None:
        super().__init__(errors={"teamEvent": "cannot change once registrations exist"})


class FileStore(Protocol):
    """Where photos and logos live (servicekit.files.MediaFileStore)."""

    def save(self, owner: str, purpose: str, stream: BinaryIO, size: int) -> str: ...

    def delete(self, url: str) -> None: ...


# Reading


def find_event(session: DbSession, public_id: str) -> Event:
    event: Event | None = session.scalar(select(Event).where(Event.public_id == public_id))
    if event is None:
        raise EventNotFound()
    return event


def list_events(
    session: DbSession,
    window: Window,
    *,
    categories: Sequence[str] = (),
    tags: Sequence[str] = (),
    order: str = "date",
) -> Page[Event]:
    """One page of events with ANY of `categories` (when given) and ANY of `tags` (when
    given), names compared as the catalogue compares them.

    The names are looked up first and the filters are on ids: that way the planner
    estimates the matches from the link tables' statistics (names inside the query left
    it guessing), and a filter none of whose names exists is an empty page at once. Then
    one COUNT, one page query and one query per collection of the page."""
    links: list[Select[tuple[int]]] = []
    for model, names in ((Category, categories), (Tag, tags)):
        if names:
            ids = _ids_of(session, model, names)
            if not ids:
                return Page([], 0, window)
            links.append(_events_linked_to(model, ids))
    total = _count_linked(session, links)
    if total <= window.offset:
        return Page([], total, window)
    return Page(_page_rows(session, links, window, order), total, window)


def _ids_of(
    session: DbSession, model: type[Category] | type[Tag], names: Sequence[str]
) -> list[int]:
    keys = {name_key(name) for name in names}
    return list(session.scalars(select(model.id).where(model.name_key.in_(keys))).all())


def _events_linked_to(model: type[Category] | type[Tag], ids: list[int]) -> Select[tuple[int]]:
    """The ids of the events in any of these categories (or with any of these tags)."""
    if model is Category:
        return select(event_categories.c.event_id).where(event_categories.c.category_id.in_(ids))
    return select(event_tags.c.event_id).where(event_tags.c.tag_id.in_(ids))


def _count_linked(session: DbSession, links: list[Select[tuple[int]]]) -> int:
    """How many events are in every one of `links` (event ids of a link table): counted
    on the link tables alone, without reading `events`."""
    if not links:
        counted = select(func.count()).select_from(Event)
    elif len(links) == 1:
        counted = select(func.count()).select_from(links[0].distinct().subquery())
    else:
        counted = select(func.count()).select_from(intersect(*links).subquery())
    return int(session.scalar(counted) or 0)


def _page_rows(
    session: DbSession, links: list[Select[tuple[int]]], window: Window, order: str
) -> Sequence[Event]:
    """The window's events: only the ids of the matches are ordered and skipped (the
    order's index holds them), then the page's rows are read. EXISTS rather than IN: it
    is the same semi-join to PostgreSQL, and SQLite then walks the order's index probing
    the link tables' keys instead of sorting every match."""
    page_ids = select(Event.id)
    for link in links:
        page_ids = page_ids.where(link.where(link.selected_columns.event_id == Event.id).exists())
    page_ids = page_ids.order_by(*ORDERS[order]).limit(window.limit).offset(window.offset)
    page = page_ids.subquery()
    statement = (
        select(Event)
        .join(page, Event.id == page.c.id)
        .options(selectinload(Event.categories), selectinload(Event.tags))
        .order_by(*ORDERS[order])
    )
    return session.scalars(statement).all()


def calendar_events(session: DbSession, since: date, limit: int) -> Sequence[Event]:
    """The calendar feed's events: from `since` on, by date, at most `limit`."""
    statement = (
        select(Event)
        .options(selectinload(Event.categories))
        .where(Event.date >= since)
        .order_by(*ORDERS["date"])
        .limit(limit)
    )
    return session.scalars(statement).all()


# Writing


def create_event(session: DbSession, settings: EventsSettings, data: dict[str, Any]) -> Event:
    values = {**CREATE_DEFAULTS, **data}
    event = Event(public_id=secrets.token_urlsafe(PUBLIC_ID_BYTES), seats_taken=0)
    _check(settings, values, sent=data, was_team_event=False)
    categories = _entries(session, Category, "category", data.get("category") or [OTHERS])
    tags = _entries(session, Tag, "tags", data.get("tags") or [])
    _set_columns(event, values)
    event.capacity = values["capacity"]
    event.categories, event.tags = categories, tags
    session.add(event)
    session.commit()
    return event


def update_event(
    session: DbSession, settings: EventsSettings, public_id: str, data: dict[str, Any]
) -> Event:
    """Replace the values of the keys sent; the others keep theirs. A larger capacity (or
    none) seats the waiting list's first registrations in the same transaction."""
    event = find_event(session, public_id)
    values = {**_stored_values(event), **data}
    _check(settings, values, sent=data, was_team_event=event.team_event)
    if values["team_event"] != event.team_event and _has_registrations(session, event.id):
        raise TeamEventFixed()
    categories = tags = None
    if "category" in data:
        categories = _entries(session, Category, "category", data["category"] or [OTHERS])
    if "tags" in data:
        tags = _entries(session, Tag, "tags", data["tags"])
    try:
        _set_columns(event, values)
        if categories is not None:
            event.categories = categories
        if tags is not None:
            event.tags = tags
        event.updated_at = utcnow()
        session.flush()  # the new fees decide the status of registrations seated below
        if "capacity" in data and data["capacity"] != event.capacity:
            _change_capacity(session, event, data["capacity"])
        session.commit()
    except Exception:
        session.rollback()
        raise
    return event


def delete_event(session: DbSession, store: FileStore, public_id: str) -> None:
    """The event and everything hanging off it (the database's cascades), then its
    photo and logo files."""
    event = find_event(session, public_id)
    files = [url for url in (event.picture_url, event.logo_url) if url]
    session.execute(
        delete(Event).where(Event.id == event.id).execution_options(synchronize_session=False)
    )
    session.commit()
    for url in files:
        store.delete(url)


def _stored_values(event: Event) -> dict[str, Any]:
    stored = {column: getattr(event, column) for column in PLAIN_COLUMNS}
    return {**stored, "min_size": event.min_size, "max_size": event.max_size}


def _check(
    settings: EventsSettings, values: dict[str, Any], *, sent: dict[str, Any], was_team_event: bool
) -> None:
    """Refuse (InvalidEvent) what the values say together; settle the sizes in `values`."""
    problems: dict[str, str] = {}
    if values["team_event"]:
        _check_team_sizes(settings, values, sent, was_team_event, problems)
    else:
        for field, key in (("min_size", "minSize"), ("max_size", "maxSize")):
            if sent.get(field, 1) != 1:
                problems[key] = "a single event (teamEvent false) has sizes of 1"
        values["min_size"] = values["max_size"] = 1
    capacity = values.get("capacity")
    if capacity is not None and capacity > settings.max_capacity:
        problems["capacity"] = f"at most {settings.max_capacity}"
    opens, closes = values["registration_opens"], values["registration_closes"]
    if opens is not None and closes is not None and closes <= opens:
        problems["registrationCloses"] = "must be after registrationOpens"
    if problems:
        raise InvalidEvent(problems)


def _check_team_sizes(
    settings: EventsSettings,
    values: dict[str, Any],
    sent: dict[str, Any],
    was_team_event: bool,
    problems: dict[str, str],
) -> None:
    if not was_team_event:  # a new team event says how large its teams are
        for field, key in (("min_size", "minSize"), ("max_size", "maxSize")):
            if field not in sent:
                problems[key] = "required for a team event"
        if problems:
            return
    if values["max_size"] > settings.max_team_size:
        problems["maxSize"] = f"at most {settings.max_team_size}"
    if values["min_size"] > values["max_size"]:
        problems["minSize"] = "must not be larger than maxSize"


def _entries(session: DbSession, model: type[Entry], field: str, names: list[str]) -> list[Entry]:
    """The categories or tags of these names (in the catalogue's order), or UnknownNames."""
    keys = {name_key(name): name for name in names}
    found = session.scalars(
        select(model).where(model.name_key.in_(keys)).order_by(model.name_key)
    ).all()
    missing = [name for key, name in keys.items() if key not in {e.name_key for e in found}]
    if missing:
        raise UnknownNames(field, missing)
    return list(found)


def _set_columns(event: Event, values: dict[str, Any]) -> None:
    for column in PLAIN_COLUMNS:
        setattr(event, column, values[column])
    event.name_key = values["name"].casefold()[:EVENT_NAME_LENGTH]
    event.min_size, event.max_size = values["min_size"], values["max_size"]


def _change_capacity(session: DbSession, event: Event, capacity: int | None) -> None:
    """A conditional UPDATE: never below the seats taken, even by a registration that
    arrives meanwhile. More seats go to the waiting list at once."""
    statement = update(Event).where(Event.id == event.id).values(capacity=capacity)
    if capacity is not None:
        statement = statement.where(Event.seats_taken <= capacity)
    changed = session.execute(statement.execution_options(synchronize_session=False))
    if changed.rowcount != 1:  # type: ignore[attr-defined]
        seats_taken = session.scalar(select(Event.seats_taken).where(Event.id == event.id))
        raise CapacityBelowSeats(capacity or 0, seats_taken or 0)
    fill_seats(cast(Session, session), event.id)
    session.refresh(event)


def _has_registrations(session: DbSession, event_id: int) -> bool:
    return bool(session.scalar(select(exists().where(Registration.event_id == event_id))))
