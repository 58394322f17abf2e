"""A query string -> one SQL statement: filters, the caller's permission, order, window.

The filter grammar is Django's (`field=v`, `field__in=a,b`, `__gt`, `__gte`, `__lt`,
`__lte`, `__contains`, `__startswith` (or `__starts_with`), `__isnull`); each field allows
the operators its resource declares. Anything not understood is a 400 naming the
parameter. The permission is a condition of the same statement that filters, counts,
orders and pages, so no answer (objects, `total_count`, CSV) holds a row the caller may
not see.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from marshmallow import ValidationError, fields, validate
from sqlalchemy import ColumnElement, Select, and_, func, select, true
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import aliased
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import GenericFunction
from sqlalchemy.types import Integer

from datapoints_service.engine.errors import InvalidParameters
from datapoints_service.engine.fields import (
    CONTAINS,
    EXACT,
    GT,
    GTE,
    IN,
    ISNULL,
    LT,
    LTE,
    OPERATOR_NAMES,
    STARTSWITH,
    Field,
    Kind,
    query_value,
)
from datapoints_service.engine.resource import (
    NAME,
    SLUG,
    URI_FORMATS,
    Caller,
    Options,
    Registry,
    Resource,
)
from servicekit.pagination import OffsetArgs, Window, page_size

DEFAULT_LIMIT, MAX_LIMIT = 20, 1000
MAX_IN_VALUES = 1000
FORMATS = ("json", "csv")
TRUTHY, FALSY = {"1", "true", "True"}, {"0", "false", "False"}


class ReadArgs(OffsetArgs):
    """The reserved parameters: never filters."""

    limit = page_size(DEFAULT_LIMIT, MAX_LIMIT, clamp=True)
    format = fields.String(load_default="json", validate=validate.OneOf(FORMATS))
    order_by = fields.String(load_default="")
    uri_format = fields.String(load_default="id", validate=validate.OneOf(URI_FORMATS))
    depth_level = fields.Integer(load_default=0, validate=validate.Range(min=0, max=1000))
    read_write = fields.String(load_default="r", validate=validate.OneOf(("r", "w")))
    show_all = fields.Boolean(load_default=False, truthy=TRUTHY, falsy=FALSY)


RESERVED = frozenset(ReadArgs().fields)


@dataclass(frozen=True)
class Filter:
    field: Field
    operator: str
    value: Any


@dataclass(frozen=True)
class ListQuery:
    filters: tuple[Filter, ...]
    order: tuple[tuple[Field, bool], ...]  # (field, descending)
    window: Window
    format: str
    options: Options
    limit_given: bool
    parameters: dict[str, str]


def parse_query(resource: Resource, params: Mapping[str, Sequence[str]]) -> ListQuery:
    """Read a query string (each key with its values); 400 naming every bad parameter."""
    errors: dict[str, str] = {}
    single: dict[str, str] = {}
    for key, values in params.items():
        if len(values) != 1:
            errors[key] = "given more than once"
        else:
            single[key] = values[0]
    reserved = {key: value for key, value in single.items() if key in RESERVED}
    args = _reserved_args(reserved, errors)
    filters = []
    for key, text in single.items():
        if key not in RESERVED:
            parsed = _filter(resource, key, text, errors)
            if parsed is not None:
                filters.append(parsed)
    order = _order(resource, str(args.get("order_by", "")), errors)
    if errors:
        raise InvalidParameters(errors=errors)
    options = Options(args["read_write"], args["depth_level"], args["show_all"], args["uri_format"])
    return ListQuery(
        filters=tuple(filters),
        order=order,
        window=Window(args["offset"], args["limit"]),
        format=args["format"],
        options=options,
        limit_given="limit" in reserved,
        parameters=single,
    )


def _reserved_args(reserved: dict[str, str], errors: dict[str, str]) -> dict[str, Any]:
    try:
        return dict(ReadArgs().load(reserved))
    except ValidationError as exc:
        messages_by_key = exc.messages if isinstance(exc.messages, dict) else {}
        for key, messages in messages_by_key.items():
            errors[key] = " ".join(messages) if isinstance(messages, list) else str(messages)
        return dict(ReadArgs().load({}))


def _filter(resource: Resource, key: str, text: str, errors: dict[str, str]) -> Filter | None:
    name, operator = key, EXACT
    if "__" in key:
        head, suffix = key.rsplit("__", 1)
        if suffix in OPERATOR_NAMES:
            name, operator = head, OPERATOR_NAMES[suffix]
    field = resource.field(name)
    if field is None:
        errors[key] = f"unknown field {name!r}"
        return None
    if operator not in field.allowed:
        errors[key] = f"{name!r} cannot be filtered with {operator!r}"
        return None
    try:
        return Filter(field, operator, _filter_value(field, operator, text))
    except ValueError as exc:
        errors[key] = str(exc)
        return None


def _filter_value(field: Field, operator: str, text: str) -> Any:
    if operator == ISNULL:
        return query_value(Kind.BOOL, text)
    if operator == IN:
        items = text.split(",")
        if len(items) > MAX_IN_VALUES:
            raise ValueError(f"at most {MAX_IN_VALUES} values")
        return [query_value(field.kind, item) for item in items]
    return query_value(field.kind, text)


def _order(
    resource: Resource, order_by: str, errors: dict[str, str]
) -> tuple[tuple[Field, bool], ...]:
    order = []
    for item in filter(None, order_by.split(",")):
        descending = item.startswith("-")
        field = resource.field(item.removeprefix("-"))
        if field is None or not field.orderable:
            errors["order_by"] = f"cannot order by {item.removeprefix('-')!r}"
            continue
        order.append((field, descending))
    return tuple(order)


# SQL


class strpos(GenericFunction[int]):
    """The position of a substring, case-sensitive: `instr` on SQLite."""

    type = Integer()
    inherit_cache = True


@compiles(strpos, "sqlite")
def _instr(element: strpos, compiler: SQLCompiler, **kw: Any) -> str:
    return f"instr({compiler.process(element.clauses, **kw)})"


def expression(field: Field, resource: Resource, caller: Caller) -> ColumnElement[Any]:
    if field.expression is not None:
        return field.expression(caller)
    return getattr(resource.model, field.column or field.name)  # type: ignore[no-any-return]


def condition(item: Filter, resource: Resource, caller: Caller) -> ColumnElement[bool]:
    column = expression(item.field, resource, caller)
    value, operator = item.value, item.operator
    if operator == EXACT:
        return column.__eq__(value)  # (`==` is typed as returning Any)
    if operator == IN:
        return column.in_(value)
    if operator == ISNULL:
        return column.is_(None) if value else column.is_not(None)
    if operator == CONTAINS:
        return strpos(column, value) > 0
    if operator == STARTSWITH:
        prefix: ColumnElement[Any] = func.substr(column, 1, len(value))
        return prefix.__eq__(value)
    comparisons: dict[str, ColumnElement[bool]] = {
        GT: column > value,
        GTE: column >= value,
        LT: column < value,
        LTE: column <= value,
    }
    return comparisons[operator]


def where(resource: Resource, caller: Caller, query: ListQuery) -> ColumnElement[bool]:
    """The filters and the caller's permission, as one condition."""
    conditions = [condition(item, resource, caller) for item in query.filters]
    if resource.visibility is not None:
        visible = resource.visibility(caller, query.options)
        if visible is not None:
            conditions.append(visible)
    return and_(true(), *conditions)


def count_statement(resource: Resource, caller: Caller, query: ListQuery) -> Select[Any]:
    return select(func.count()).select_from(resource.model).where(where(resource, caller, query))


def rows_statement(
    registry: Registry, resource: Resource, caller: Caller, query: ListQuery
) -> Select[Any]:
    """The objects' columns (references rendered as `uri_format` asks), filtered and
    ordered (`id` last, so pages never overlap)."""
    columns = [
        _shown(registry, field, resource, caller, query.options).label(field.name)
        for field in resource.fields
    ]
    ordering = [
        expression(field, resource, caller).desc()
        if descending
        else expression(field, resource, caller).asc()
        for field, descending in query.order
    ]
    return (
        select(*columns)
        .where(where(resource, caller, query))
        .order_by(*ordering, resource.model.id.asc())
    )


def paged(statement: Select[Any], window: Window) -> Select[Any]:
    return statement.limit(window.limit).offset(window.offset)


def _shown(
    registry: Registry, field: Field, resource: Resource, caller: Caller, options: Options
) -> ColumnElement[Any]:
    column = expression(field, resource, caller)
    if field.ref is None or not field.renders_reference or options.uri_format not in (NAME, SLUG):
        return column
    target = registry[field.ref]
    shown = target.slug if options.uri_format == SLUG and target.slug else target.label
    referred = aliased(target.model)  # a region's parent is a region: never correlated
    return select(getattr(referred, shown)).where(referred.id == column).scalar_subquery()
