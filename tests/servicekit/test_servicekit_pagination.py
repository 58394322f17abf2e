"""Pagination mechanics: arguments parsed and bounded (400 naming the argument), one
COUNT and one LIMIT/OFFSET query in SQL on the statement as given."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from marshmallow import ValidationError
from sqlalchemy import event, select

from servicekit.pagination import OffsetArgs, PageArgs, Window, page_size, page_window, paginate
from tests.servicekit.servicekit_sample import Thing, db


class ThingsQuery(PageArgs):
    limit = page_size(10, 50)


class ClampedQuery(PageArgs):
    page_size = page_size(100, 1000, clamp=True)


class RowsQuery(OffsetArgs):
    limit = page_size(20, 100)


def test_page_arguments_default_and_bound() -> None:
    assert ThingsQuery().load({}) == {"page": 1, "limit": 10}
    assert ThingsQuery().load({"page": "3", "limit": "50"}) == {"page": 3, "limit": 50}
    assert ClampedQuery().load({"page_size": "5000"}) == {"page": 1, "page_size": 1000}
    assert RowsQuery().load({"offset": "40"}) == {"limit": 20, "offset": 40}


@pytest.mark.parametrize(
    ("schema", "args", "field"),
    [
        (ThingsQuery, {"page": "0"}, "page"),
        (ThingsQuery, {"page": "-1"}, "page"),
        (ThingsQuery, {"page": "x"}, "page"),
        (ThingsQuery, {"page": "99999999999"}, "page"),
        (ThingsQuery, {"limit": "0"}, "limit"),
        (ThingsQuery, {"limit": "51"}, "limit"),
        (ClampedQuery, {"page_size": "0"}, "page_size"),
        (RowsQuery, {"offset": "-5"}, "offset"),
        (RowsQuery, {"limit": "1.5"}, "limit"),
    ],
)
def test_bad_page_arguments_are_refused_by_name(
    schema: type[PageArgs], args: dict[str, str], field: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        schema().load(args)
    assert field in refused.value.messages


def test_windows() -> None:
    assert page_window({"page": 3, "limit": 10}) == Window(20, 10)
    assert page_window({"page": 1, "page_size": 7}, "page_size") == Window(0, 7)
    assert page_window({"offset": 15, "limit": 5}) == Window(15, 5)
    assert Window(20, 10).page == 3


@pytest.fixture
def things_app(make_app: Any) -> Flask:
    app: Flask = make_app()
    with app.app_context():
        db.session.add_all(Thing(name=f"thing-{n:02}") for n in range(23))
        db.session.commit()
    return app


def test_paginate_counts_and_slices_in_sql(things_app: Flask) -> None:
    statements: list[str] = []
    with things_app.app_context():
        event.listen(db.engine, "before_cursor_execute", _recorder(statements))
        statement = select(Thing).where(Thing.name != "thing-00").order_by(Thing.name)
        page = paginate(db.session, statement, Window.of_page(3, 10))
    assert [thing.name for thing in page.items] == [f"thing-{n:02}" for n in range(21, 23)]
    assert (page.total, page.pages, page.number, page.size) == (22, 3, 3, 10)
    assert not page.has_next
    assert len(statements) == 2
    assert "count(" in statements[0].lower()
    assert "LIMIT" in statements[1] and "OFFSET" in statements[1]


def test_an_empty_listing_has_one_empty_page(things_app: Flask) -> None:
    with things_app.app_context():
        statement = select(Thing).where(Thing.name == "nothing")
        page = paginate(db.session, statement, Window.of_page(1, 10))
    assert (list(page.items), page.total, page.pages, page.has_next) == ([], 0, 1, False)


def _recorder(statements: list[str]) -> Any:
    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    return record
