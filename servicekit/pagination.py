"""Pagination mechanics, once for every service; each service renders its own page shape.

Query arguments: a schema inherits `PageArgs` (a 1-based `page`) and declares its size
argument with `page_size()` under the name its document uses (`limit`, `page_size`), or
inherits `OffsetArgs` (`limit` and `offset`). Out-of-range values are a 400 naming the
argument, unless the service documents clamping (`clamp=True`).

SQL: `paginate(session, statement, window)` runs one `COUNT` and one `LIMIT/OFFSET`
query on the statement as given (its filters, permissions and order included), so no
list ever loads more than a page.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from marshmallow import Schema, fields, post_load, validate
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, scoped_session

T = TypeVar("T")
MAX_PAGE_NUMBER = 1_000_000
MAX_OFFSET = 100_000_000


@dataclass(frozen=True)
class Window:
    """Which rows a page holds: `limit` rows after skipping `offset`."""

    offset: int
    limit: int

    @classmethod
    def of_page(cls, page: int, size: int) -> Window:
        return cls((page - 1) * size, size)

    @property
    def page(self) -> int:
        return self.offset // self.limit + 1


@dataclass(frozen=True)
class Page(Generic[T]):
    items: Sequence[T]
    total: int
    window: Window

    @property
    def number(self) -> int:
        return self.window.page

    @property
    def size(self) -> int:
        return self.window.limit

    @property
    def pages(self) -> int:
        """How many pages there are; an empty listing still has one (empty) page."""
        return max(1, math.ceil(self.total / self.window.limit))

    @property
    def has_next(self) -> bool:
        return self.window.offset + len(self.items) < self.total


def page_size(default: int, maximum: int, *, clamp: bool = False, **kwargs: Any) -> fields.Integer:
    """The page-size argument: at least 1, at most `maximum` (400 beyond, or lowered to
    `maximum` when the service documents clamping)."""
    upper = None if clamp else maximum
    return fields.Integer(
        load_default=default,
        validate=validate.Range(min=1, max=upper),
        metadata={
            "description": f"page size, {default} by default, at most {maximum}",
            "maximum_page_size": maximum,
        },
        **kwargs,
    )


class _PageSizeArgs(Schema):
    """Lowers page sizes declared with `clamp=True` to their maximum after loading."""

    @post_load
    def clamp_page_size(self, data: dict[str, Any], **_kwargs: Any) -> dict[str, Any]:
        for name, field in self.fields.items():
            maximum = field.metadata.get("maximum_page_size")
            if maximum is not None and data.get(name) is not None:
                data[name] = min(data[name], maximum)
        return data


class PageArgs(_PageSizeArgs):
    """A 1-based `page`; subclasses add their size field with `page_size()`."""

    page = fields.Integer(
        load_default=1,
        validate=validate.Range(min=1, max=MAX_PAGE_NUMBER),
        metadata={"description": "1-based page number"},
    )


class OffsetArgs(_PageSizeArgs):
    """`limit` and `offset`, for documents that page by offset. Subclasses set the
    defaults by redeclaring `limit` with `page_size()`."""

    limit = page_size(20, 1000)
    offset = fields.Integer(
        load_default=0,
        validate=validate.Range(min=0, max=MAX_OFFSET),
        metadata={"description": "rows to skip"},
    )


def page_window(args: Mapping[str, Any], size_name: str = "limit") -> Window:
    """The window of loaded `PageArgs` (page and `size_name`) or `OffsetArgs`."""
    if "offset" in args:
        return Window(int(args["offset"]), int(args[size_name]))
    return Window.of_page(int(args["page"]), int(args[size_name]))


def paginate(
    session: Session | scoped_session[Any], statement: Select[Any], window: Window
) -> Page[Any]:
    """One page of `statement`'s rows (scalars), and how many rows there are in all."""
    counted = select(func.count()).select_from(statement.order_by(None).subquery())
    total = int(session.scalar(counted) or 0)
    rows = session.scalars(statement.limit(window.limit).offset(window.offset)).all()
    return Page(rows, total, window)
