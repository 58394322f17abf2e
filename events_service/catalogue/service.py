"""Categories and tags: listed by anyone, written by staff. Names compare ignoring case
and surrounding spaces; `Others` (the category of events created without one) always
exists. Refusals carry the fest document's single-`error` bodies."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Column, exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, scoped_session

from events_service.catalogue.schemas import name_key
from events_service.errors import DocumentRefusal
from events_service.models import OTHERS, Category, Tag, event_categories, event_tags

Entry = Category | Tag
DbSession = Session | scoped_session[Any]


@dataclass(frozen=True)
class Kind:
    """Categories or tags: their table, the events' links to them and their refusals."""

    model: type[Category] | type[Tag]
    link: Column[int]  # the association table's column naming the entry
    exists: str
    missing: str
    missing_on_delete: str
    in_use: str


CATEGORIES = Kind(
    Category,
    event_categories.c.category_id,
    exists="This category already exist.",
    missing="Category does not exist.",
    missing_on_delete="This category does not exist.",
    in_use="Cant delete a category that is in use.",
)
TAGS = Kind(
    Tag,
    event_tags.c.tag_id,
    exists="Tag already exist.",
    missing="Tag does not exist.",
    missing_on_delete="This tag does not exist.",
    in_use="Cant delete a tag that is in use.",
)
OTHERS_STAYS = f"The category {OTHERS} cannot be deleted: events without a category are in it."


def list_entries(session: DbSession, kind: Kind) -> Sequence[Entry]:
    """Every entry, by name (the fest has tens of them: the document lists them unpaged)."""
    model = kind.model
    entries = session.scalars(select(model).order_by(model.name_key, model.id)).all()
    return cast(Sequence[Entry], entries)


def find_entry(session: DbSession, kind: Kind, name: str) -> Entry | None:
    model = kind.model
    return cast(Entry | None, session.scalar(select(model).where(model.name_key == name_key(name))))


def create_entry(session: DbSession, kind: Kind, name: str, description: str) -> Entry:
    if find_entry(session, kind, name) is not None:
        raise DocumentRefusal(kind.exists)
    entry = kind.model(name=name.strip(), name_key=name_key(name), description=description)
    session.add(entry)
    _commit(session, kind.exists)  # a concurrent create of the same name loses here
    return entry


def update_entry(session: DbSession, kind: Kind, name: str, description: str) -> Entry:
    entry = find_entry(session, kind, name)
    if entry is None:
        raise DocumentRefusal(kind.missing)
    entry.description = description
    session.commit()
    return entry


def delete_entry(session: DbSession, kind: Kind, name: str) -> None:
    entry = find_entry(session, kind, name)
    if entry is None:
        raise DocumentRefusal(kind.missing_on_delete)
    if kind is CATEGORIES and entry.name_key == name_key(OTHERS):
        raise DocumentRefusal(OTHERS_STAYS)
    if session.scalar(select(exists().where(kind.link == entry.id))):
        raise DocumentRefusal(kind.in_use)
    session.delete(entry)
    _commit(session, kind.in_use)  # an event linked to it meanwhile: the key refuses


def _commit(session: DbSession, refusal: str) -> None:
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise DocumentRefusal(refusal) from None
