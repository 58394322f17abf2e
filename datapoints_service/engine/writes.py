"""Writes: insert, update and delete of one row, each in one transaction.

Refused, with nothing written: a read-only resource (405), a caller without the
privilege (403; a row owned by someone else: 403 when they may read it, 404 otherwise),
unknown, missing or ill-typed columns and references to rows that do not exist (400
naming each), a duplicate of a unique value (409 naming the field), a resource's own
rules (its hooks: cycles, dates, ...), and the delete of a row others refer to (409
naming the referrers).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from sqlalchemy import and_, exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from datapoints_service.engine.errors import Conflict, Forbidden, InvalidValues, NotFound, ReadOnly
from datapoints_service.engine.fields import Field, body_value
from datapoints_service.engine.resource import Caller, Errors, Options, Registry, Resource
from datapoints_service.locking import take_write_lock

CREATE, UPDATE, DELETE = "create", "update", "delete"


def insert(
    session: Session,
    registry: Registry,
    resource: Resource,
    caller: Caller,
    body: Mapping[str, Any],
    owner_id: int | None = None,
) -> int:
    """A new row from `body` ({column: value}); its id. `owner_id`: the caller's user id
    (the owner of an owned row, the author of an authored one)."""
    _authorize(resource, caller, CREATE)
    values = _values(resource, body, partial=False)
    if resource.owner is not None:
        values[resource.owner] = owner_id
    if resource.author is not None:
        values[resource.author] = owner_id
    row = resource.model(**values)
    with _transaction(session, lambda: _taken(session, resource, values, None)):
        _check(session, registry, resource, row, values, None)
        session.add(row)
        session.flush()
        if resource.hooks.after_write is not None:
            resource.hooks.after_write(session, row, None)
    return int(row.id)


def update(
    session: Session,
    registry: Registry,
    resource: Resource,
    caller: Caller,
    row_id: int,
    body: Mapping[str, Any],
    author_id: int | None = None,
) -> None:
    """Change the columns `body` names (an `id` in it must be `row_id`). `author_id`: the
    caller's user id, for authored resources."""
    _authorize(resource, caller, UPDATE)
    body = dict(body)
    if "id" in body and str(body.pop("id")) != str(row_id):
        raise InvalidValues(errors={"id": "is not the id of the object written"})
    values = _values(resource, body, partial=True)
    if resource.author is not None:
        values[resource.author] = author_id
    with _transaction(session, lambda: _taken(session, resource, values, row_id)):
        row = _writable_row(session, resource, caller, row_id)
        previous = {key: getattr(row, key) for key in values}
        for key, value in values.items():
            setattr(row, key, value)
        _check(session, registry, resource, row, values, row_id)
        session.flush()
        if resource.hooks.after_write is not None:
            resource.hooks.after_write(session, row, previous)


def delete(
    session: Session, registry: Registry, resource: Resource, caller: Caller, row_id: int
) -> None:
    _authorize(resource, caller, DELETE)
    with _transaction(session):
        row = _writable_row(session, resource, caller, row_id)
        referrers = _referrers(session, registry, resource, row_id)
        if referrers:
            raise Conflict(
                f"{resource.name} {row_id} is referred to by {', '.join(referrers)}",
                errors={"id": "referred to by " + ", ".join(referrers)},
                referred_by=referrers,
            )
        if resource.hooks.before_delete is not None:
            errors = resource.hooks.before_delete(session, row)
            if errors:
                raise Conflict(errors=errors)
        session.delete(row)


@contextmanager
def _transaction(session: Session, explain: Callable[[], Errors] | None = None) -> Iterator[None]:
    """Commit at the end, roll back on any refusal or error. The write lock comes first
    (see locking.py). A unique constraint that a concurrent write won (PostgreSQL: both
    checked before either committed) is a 409; `explain`, run after the rollback, names
    the values now taken."""
    try:
        take_write_lock(session)
        yield
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        errors = explain() if explain is not None else {}
        session.rollback()  # explain only read
        if errors:
            raise Conflict(errors=errors) from exc
        raise Conflict("conflicts with rows written meanwhile") from exc
    except BaseException:
        session.rollback()
        raise


def _authorize(resource: Resource, caller: Caller, action: str) -> None:
    if resource.read_only is not None:
        raise ReadOnly(resource.read_only)
    if resource.owner is not None:
        return  # owned rows: checked on the row (anyone may create their own)
    if resource.privilege is None or not caller.identity.can(resource.privilege, action):
        raise Forbidden(f"missing privilege: {resource.privilege} {action}")


def _writable_row(session: Session, resource: Resource, caller: Caller, row_id: int) -> Any:
    visible = resource.visibility(caller, Options()) if resource.visibility else None
    found = select(resource.model).where(resource.model.id == row_id)
    row = session.scalar(found if visible is None else found.where(visible))
    if row is None:
        raise NotFound(f"no {resource.name} {row_id}")
    if resource.owner is not None and not caller.identity.is_superuser:
        owner = getattr(row, resource.owner)
        if owner is None or owner != session.scalar(select(caller.user_id)):
            raise Forbidden(f"this {resource.name} belongs to another user")
    return row


def _values(resource: Resource, body: Mapping[str, Any], *, partial: bool) -> dict[str, Any]:
    """{column: value} read from a body; 400 naming every bad column."""
    writable = {field.write_key: field for field in resource.fields if field.writable}
    errors: Errors = {}
    values: dict[str, Any] = {}
    for key, raw in body.items():
        field = writable.get(key)
        if field is None:
            errors[key] = "unknown column" if resource.field(key) is None else "not writable"
            continue
        try:
            values[key] = _value(field, raw)
        except ValueError as exc:
            errors[key] = str(exc)
    if not partial:
        _defaults(writable.values(), values, errors)
    if errors:
        raise InvalidValues(errors=errors)
    return values


def _value(field: Field, raw: Any) -> Any:
    if raw is None or (raw == "" and field.nullable):
        if not field.nullable:
            raise ValueError("may not be null")
        return None
    value = body_value(field.kind, raw)
    if field.choices is not None and value not in field.choices:
        raise ValueError(f"one of {', '.join(field.choices)}")
    return value


def _defaults(fields: Any, values: dict[str, Any], errors: Errors) -> None:
    for field in fields:
        if field.write_key in values:
            continue
        if field.default is not None:
            values[field.write_key] = field.default(values)
        elif field.required:
            errors[field.write_key] = "missing required column"


def _check(
    session: Session,
    registry: Registry,
    resource: Resource,
    row: Any,
    values: dict[str, Any],
    row_id: int | None,
) -> None:
    # The checks' queries must not flush the changed row first: a duplicate would then
    # fail as a bare constraint error instead of a refusal naming its field.
    with session.no_autoflush:
        _check_values(session, registry, resource, row, values, row_id)


def _check_values(
    session: Session,
    registry: Registry,
    resource: Resource,
    row: Any,
    values: dict[str, Any],
    row_id: int | None,
) -> None:
    errors = _dangling(session, registry, resource, values)
    if errors:
        raise InvalidValues(errors=errors)
    duplicates = _duplicates(session, resource, row, values, row_id)
    if duplicates:
        raise Conflict(errors=duplicates)
    if resource.hooks.validate is not None:
        errors = resource.hooks.validate(session, row)
        if errors:
            raise InvalidValues(errors=errors)


def _dangling(
    session: Session, registry: Registry, resource: Resource, values: dict[str, Any]
) -> Errors:
    errors: Errors = {}
    for field in resource.fields:
        value = values.get(field.write_key)
        if field.ref is None or value is None or field.write_key not in values:
            continue
        target = registry[field.ref].model
        if not session.scalar(select(exists().where(target.id == value))):
            errors[field.write_key] = f"no {field.ref} {value}"
    return errors


def _duplicates(
    session: Session, resource: Resource, row: Any, values: dict[str, Any], row_id: int | None
) -> Errors:
    errors: Errors = {}
    groups = [(field.write_key,) for field in resource.fields if field.unique]
    for group in [*groups, *resource.unique_together]:
        if not any(key in values for key in group) or getattr(row, group[0]) is None:
            continue
        same = and_(*(getattr(resource.model, key) == getattr(row, key) for key in group))
        if row_id is not None:
            same = and_(same, resource.model.id != row_id)
        if session.scalar(select(exists().where(same))):
            errors[",".join(group)] = "already taken"
    return errors


def _taken(
    session: Session, resource: Resource, values: dict[str, Any], row_id: int | None
) -> Errors:
    """The unique values of `values` another row holds (after a write lost a race on one;
    the other columns of a group are the row's stored ones)."""
    stored = None if row_id is None else session.get(resource.model, row_id)
    errors: Errors = {}
    groups = [(field.write_key,) for field in resource.fields if field.unique]
    for group in [*groups, *resource.unique_together]:
        if not any(key in values for key in group):
            continue
        wanted = {
            key: values[key] if key in values else getattr(stored, key, None) for key in group
        }
        if any(value is None for value in wanted.values()):
            continue
        same = and_(*(getattr(resource.model, key) == value for key, value in wanted.items()))
        if row_id is not None:
            same = and_(same, resource.model.id != row_id)
        if session.scalar(select(exists().where(same))):
            errors[",".join(group)] = "already taken"
    return errors


def _referrers(session: Session, registry: Registry, resource: Resource, row_id: int) -> list[str]:
    """`<resource>.<column>` of every kind of row that refers to this one."""
    found = []
    for other in registry.values():
        for field in other.fields:
            if field.ref != resource.name or field.expression is not None:
                continue
            column = getattr(other.model, field.write_key)
            if session.scalar(select(exists().where(column == row_id))):
                found.append(f"{other.name}.{field.write_key}")
    return found
