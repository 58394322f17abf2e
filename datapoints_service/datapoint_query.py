"""The query of `GET /api/v1/datapoint/`: its parameters, and the few statements that
count, page and fetch values (stored or computed) whatever the size of the answer.

Values are the stored and computed ones, as `rollup.effective_values()` defines them (each
table filtered on its own: `_known`): nothing is aggregated while reading. An answer is at
most four statements: the selected indicators, the count,
the page of (region, campaign) pairs (or of values, with `no_pivot`), and the values of
the page's pairs, looked up by (region, campaign) on the stored and computed tables'
(region_id, campaign_id, indicator_id) indexes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Any, NamedTuple

from marshmallow import ValidationError, fields, validate
from sqlalchemy import ColumnElement, Select, Subquery, func, literal, select, union_all
from sqlalchemy.orm import Session

from datapoints_service import permissions
from datapoints_service.engine.listing import (
    DEFAULT_LIMIT,
    FALSY,
    FORMATS,
    MAX_LIMIT,
    TRUTHY,
)
from datapoints_service.engine.parameters import Parameters
from datapoints_service.engine.resource import Caller, Options
from datapoints_service.indexing import not_indexed
from datapoints_service.models import Campaign, DataPoint, DataPointRollup, Indicator, Region
from servicekit.pagination import OffsetArgs, Window, page_size

ID_LISTS = ("indicator__in", "region__in", "campaign__in")
DATES = ("campaign_start", "campaign_end")
# Pairs whose values one statement looks up: two bound parameters each, far below every
# database's limit, and a whole JSON page (at most 1,000 pairs) in one statement.
PAIRS_PER_LOOKUP = 1000


class DatapointArgs(OffsetArgs):
    """The parameters that are not selections."""

    limit = page_size(DEFAULT_LIMIT, MAX_LIMIT, clamp=True)
    format = fields.String(load_default="json", validate=validate.OneOf(FORMATS))
    no_pivot = fields.Boolean(load_default=False, truthy=TRUTHY, falsy=FALSY)


KNOWN = frozenset((*ID_LISTS, *DATES, *DatapointArgs().fields))


@dataclass(frozen=True)
class DatapointQuery:
    """A parsed query string (None: not narrowed by that parameter)."""

    indicator_ids: list[int] | None
    region_ids: list[int] | None
    campaign_ids: list[int] | None
    campaign_start: date | None
    campaign_end: date | None
    window: Window
    format: str
    no_pivot: bool
    paged: bool  # `limit` or `offset` given (a CSV answer is otherwise the whole result)
    parameters: dict[str, str]


class Value(NamedTuple):
    """A known value (a tuple: a page holds up to 50,000 of them)."""

    region_id: int
    campaign_id: int
    indicator_id: int
    value: float
    is_agg: bool


Pair = tuple[int, int]


def parse(params: Mapping[str, Sequence[str]]) -> DatapointQuery:
    """Read a query string (each key with its values); 400 naming every bad parameter."""
    given = Parameters(params, KNOWN)
    ids = {key: given.ids(key) for key in ID_LISTS}
    start, end = given.date("campaign_start"), given.date("campaign_end")
    if start is not None and end is not None and end < start:
        given.refuse("campaign_end", "before campaign_start")
    single = given.single
    args = _args({key: single[key] for key in DatapointArgs().fields if key in single}, given)
    given.check()
    return DatapointQuery(
        indicator_ids=ids["indicator__in"],
        region_ids=ids["region__in"],
        campaign_ids=ids["campaign__in"],
        campaign_start=start,
        campaign_end=end,
        window=Window(args["offset"], args["limit"]),
        format=args["format"],
        no_pivot=args["no_pivot"],
        paged="limit" in single or "offset" in single,
        parameters=single,
    )


def _args(values: dict[str, str], given: Parameters) -> dict[str, Any]:
    try:
        return dict(DatapointArgs().load(values))
    except ValidationError as exc:
        messages_by_key = exc.messages if isinstance(exc.messages, dict) else {}
        for key, messages in messages_by_key.items():
            given.refuse(key, " ".join(messages) if isinstance(messages, list) else str(messages))
        return dict(DatapointArgs().load({}))


# Statements


@dataclass(frozen=True)
class Selection:
    """What a caller asked for and may read, as SQL.

    `indicator_ids`, once the selected indicators are read (`narrowed_to`), puts their
    ids in the statements instead of the permission's subquery: the planner then knows
    how many there are (PostgreSQL guesses one row for the subquery and plans a probe per
    indicator)."""

    caller: Caller
    query: DatapointQuery
    indicator_ids: tuple[int, ...] | None = None

    def indicators(self) -> Select[int, str]:
        """The selected indicators (id, name), by id: those the caller may read, narrowed
        by `indicator__in`."""
        statement = select(Indicator.id, Indicator.name).order_by(Indicator.id)
        return statement.where(*self._indicator_conditions())

    def narrowed_to(self, selected: Sequence[int]) -> Selection:
        """This selection with the ids `indicators()` found (kept out when nothing
        narrows the indicators: then no condition is needed at all)."""
        if not self._indicator_conditions():
            return self
        return replace(self, indicator_ids=tuple(selected))

    def pair_count(self) -> Select[Any]:
        return select(func.count()).select_from(self._pairs())

    def pairs(self, window: Window | None) -> Select[Any]:
        """(region_id, campaign_id, region name, campaign name) of the pairs with a
        known value, by region id, campaign start date, campaign id (those of `window`;
        None: all)."""
        pairs = self._pairs()
        keys = (
            select(pairs.c.region_id, pairs.c.campaign_id, Campaign.start_date)
            .join(Campaign, Campaign.id == pairs.c.campaign_id)
            .order_by(pairs.c.region_id, Campaign.start_date, pairs.c.campaign_id)
        )
        page = _windowed(keys, window).subquery("page")
        return (
            select(page.c.region_id, page.c.campaign_id, Region.name, Campaign.name)
            .join(Region, Region.id == page.c.region_id)
            .join(Campaign, Campaign.id == page.c.campaign_id)
            .order_by(page.c.region_id, page.c.start_date, page.c.campaign_id)
        )

    def pair_values(self, pairs: Sequence[Pair]) -> Select[Any]:
        """The selected indicators' values of these pairs (all readable: they come from
        `pairs()`)."""
        regions = sorted({region for region, _ in pairs})
        campaigns = sorted({campaign for _, campaign in pairs})

        # Searched in the indexes by region and campaign: a list of (region, campaign)
        # row values is no index search on SQLite, and a row-by-row OR of up to 1,000
        # pairs on PostgreSQL. Values of other pairs of these regions and campaigns are
        # left out by `lookup_values`.
        def of_pairs(table: Any) -> list[ColumnElement[bool]]:
            return [
                table.region_id.in_(regions),
                table.campaign_id.in_(campaigns),
                *self._indicator_filter(table, by_region=False),
            ]

        return select(*_value_columns(_known(of_pairs)))

    def value_count(self) -> Select[Any]:
        return select(func.count()).select_from(_known(self._value_conditions))

    def values(self, window: Window | None) -> Select[Any]:
        """The known values (`no_pivot`) with their region's, campaign's and indicator's
        names, by region id, campaign start date, campaign id, indicator id (those of
        `window`; None: all). The names are joined to the page, not to every value."""
        known = _known(self._value_conditions)
        keys = (
            select(*_value_columns(known), Campaign.start_date)
            .join(Campaign, Campaign.id == known.c.campaign_id)
            .order_by(
                known.c.region_id, Campaign.start_date, known.c.campaign_id, known.c.indicator_id
            )
        )
        page = _windowed(keys, window).subquery("page")
        return (
            select(*_value_columns(page), Region.name, Campaign.name, Indicator.name)
            .join(Region, Region.id == page.c.region_id)
            .join(Campaign, Campaign.id == page.c.campaign_id)
            .join(Indicator, Indicator.id == page.c.indicator_id)
            .order_by(page.c.region_id, page.c.start_date, page.c.campaign_id, page.c.indicator_id)
        )

    def _pairs(self) -> Subquery:
        known = _known(self._value_conditions)
        return select(known.c.region_id, known.c.campaign_id).distinct().subquery("pair")

    def _value_conditions(self, table: Any) -> list[ColumnElement[bool]]:
        """The selection, as conditions on `table`'s (region_id, campaign_id,
        indicator_id)."""
        readable = permissions.regions(self.caller, Options())
        by_region = readable is not None or self.query.region_ids is not None
        conditions = self._indicator_filter(table, by_region=by_region)
        if readable is not None:
            conditions.append(table.region_id.in_(select(Region.id).where(readable)))
        if self.query.region_ids is not None:
            conditions.append(table.region_id.in_(self.query.region_ids))
        if self.query.campaign_ids is not None:
            conditions.append(table.campaign_id.in_(self.query.campaign_ids))
        dated = self._campaign_dates()
        if dated:
            conditions.append(table.campaign_id.in_(select(Campaign.id).where(*dated)))
        return conditions

    def _indicator_filter(self, table: Any, *, by_region: bool) -> list[ColumnElement[bool]]:
        """The selected indicators (`by_region`: not searched by, so that SQLite searches
        the cells by region, then campaign)."""
        indicator = not_indexed(table.indicator_id) if by_region else table.indicator_id
        if self.indicator_ids is not None:
            return [indicator.in_(self.indicator_ids)]
        conditions = self._indicator_conditions()
        if not conditions:
            return []
        return [indicator.in_(select(Indicator.id).where(*conditions))]

    def _indicator_conditions(self) -> list[ColumnElement[bool]]:
        conditions = []
        readable = permissions.indicators(self.caller, Options())
        if readable is not None:
            conditions.append(readable)
        if self.query.indicator_ids is not None:
            conditions.append(Indicator.id.in_(self.query.indicator_ids))
        return conditions

    def _campaign_dates(self) -> list[ColumnElement[bool]]:
        conditions = []
        if self.query.campaign_start is not None:
            conditions.append(Campaign.start_date >= self.query.campaign_start)
        if self.query.campaign_end is not None:
            conditions.append(Campaign.end_date <= self.query.campaign_end)
        return conditions


def _known(conditions: Callable[[Any], list[ColumnElement[bool]]]) -> Subquery:
    """Stored and computed values, the columns of `rollup.effective_values()`, each table
    filtered by `conditions` of its own columns. Not a filter on `effective_values()`:
    SQLite does not push a condition holding a subquery (the caller's regions) into a
    UNION ALL, and then searched the values by indicator, all regions' (2.3 s instead of
    40 ms for a province's count on a million values)."""
    arms = [
        select(
            table.region_id,
            table.campaign_id,
            table.indicator_id,
            table.value,
            literal(is_agg).label("is_agg"),
        ).where(*conditions(table))
        for table, is_agg in ((DataPoint, False), (DataPointRollup, True))
    ]
    return union_all(*arms).subquery("known")


def _value_columns(known: Subquery) -> list[ColumnElement[Any]]:
    return [
        known.c.region_id,
        known.c.campaign_id,
        known.c.indicator_id,
        known.c.value,
        known.c.is_agg,
    ]


def _windowed(statement: Select[Any], window: Window | None) -> Select[Any]:
    if window is None:
        return statement
    return statement.limit(window.limit).offset(window.offset)


def lookup_values(session: Session, selection: Selection, pairs: Sequence[Pair]) -> list[Value]:
    """The values of `pairs`: one statement per `PAIRS_PER_LOOKUP` pairs."""
    found: list[Value] = []
    for start in range(0, len(pairs), PAIRS_PER_LOOKUP):
        chunk = pairs[start : start + PAIRS_PER_LOOKUP]
        wanted = set(chunk)
        # Core rows into tuples: a tenth faster than ORM rows into dataclasses (15,000
        # values, SQLite); the statement itself is most of the time.
        rows = session.connection().execute(selection.pair_values(chunk))
        found.extend(_value(row) for row in rows if (row[0], row[1]) in wanted)
    return found


def _value(row: Sequence[Any]) -> Value:
    return Value(int(row[0]), int(row[1]), int(row[2]), float(row[3]), bool(row[4]))


def batches(
    session: Session, statement: Select[Any], batch_rows: int
) -> Iterator[Sequence[Sequence[Any]]]:
    """The rows of `statement`, `batch_rows` at a time from the database; the session is
    closed at the end (a server-side cursor on PostgreSQL), even when the client goes
    away half-way."""
    try:
        result = session.execute(statement.execution_options(yield_per=batch_rows))
        yield from result.partitions()
    finally:
        session.close()
