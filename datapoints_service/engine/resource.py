"""A resource's declaration, the caller, and the read options every listing takes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, ScalarSelect, select
from sqlalchemy.orm import Session

from datapoints_service.engine.fields import Field
from datapoints_service.models import User
from servicekit import Identity

API_PREFIX = "/api/v2"
ID, NAME, SLUG, URI = "id", "name", "slug", "uri"
URI_FORMATS = (ID, NAME, SLUG, URI)


@dataclass(frozen=True)
class Caller:
    """Who asks: their verified identity, and (in SQL) this service's id for them."""

    identity: Identity

    @property
    def staff(self) -> bool:
        return self.identity.is_staff

    @property
    def user_id(self) -> ScalarSelect[int]:
        """This service's integer id of the caller (NULL when the users copy does not
        know them yet: then no permission row is theirs)."""
        return select(User.id).where(User.public_id == self.identity.subject).scalar_subquery()


@dataclass(frozen=True)
class Options:
    """The reserved parameters that change what a listing holds or how it renders."""

    read_write: str = "r"
    depth_level: int = 0
    show_all: bool = False
    uri_format: str = ID


Visibility = Callable[[Caller, Options], ColumnElement[bool] | None]
Errors = dict[str, str]


@dataclass(frozen=True)
class Hooks:
    """A resource's own rules around writes (all run inside the write's transaction).

    `validate(session, row)`: refusals of the row as it would be written, per field.
    `after_write(session, row, previous)`: keeps derived tables current (`previous` holds
    the changed columns' old values; None for an insert). `before_delete(session, row)`:
    refusals (references the generic check cannot see), then clean-up.
    """

    validate: Callable[[Session, Any], Errors] | None = None
    after_write: Callable[[Session, Any, dict[str, Any] | None], None] | None = None
    before_delete: Callable[[Session, Any], Errors] | None = None


@dataclass(frozen=True)
class Resource:
    """One `/api/v2/<name>/` resource.

    `privilege` is the model name of the staff privilege its writes need
    (`identity.can(privilege, "create" | "update" | "delete")`); `owner` the column of
    rows that belong to a user instead (written by their owner only); `read_only` the
    answer to any write when this service does not write it. `visibility` is the row
    permission, a SQL condition from the caller (None: every row).
    """

    name: str
    model: type[Any]
    fields: tuple[Field, ...]
    privilege: str | None = None
    owner: str | None = None
    read_only: str | None = None
    visibility: Visibility | None = None
    label: str = "name"  # what `uri_format=name` shows of a reference to this resource
    slug: str | None = None  # ... and `uri_format=slug` (the label when there is none)
    resource_uri: bool = False
    author: str | None = None  # a column set to the caller's user id on every write
    routed: bool = True  # False: only referred to (checked), not served
    unique_together: tuple[tuple[str, ...], ...] = ()
    hooks: Hooks = field(default_factory=Hooks)

    def field(self, name: str) -> Field | None:
        for candidate in self.fields:
            if name in candidate.names():
                return candidate
        return None

    def uri(self, row_id: int) -> str:
        return f"{API_PREFIX}/{self.name}/{row_id}/"


Registry = Mapping[str, Resource]
