"""Each service owns its database: one `SQLAlchemy` object (and metadata) per service."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Any

from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import DateTime, Dialect, Engine, MetaData, TypeDecorator, event, make_url
from sqlalchemy.orm import DeclarativeBase

from servicekit.config import DATABASE_POOL_OPTIONS

# Stable constraint names, so Alembic migrations are the same on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# A table's `info` key listing columns and indexes a PostgreSQL-only migration made by hand
# and the model leaves out on purpose: schema comparisons skip them.
POSTGRESQL_ONLY = "postgresql_only"


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every database.

    SQLite keeps no offset: values are stored as UTC wall time and read back with
    `tzinfo=UTC`; PostgreSQL's `timestamptz` values are converted to UTC as well.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass a timezone-aware value")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class ServiceSQLAlchemy(SQLAlchemy):
    """Flask-SQLAlchemy with the pool settings (`DB_POOL_SIZE`, ...) on PostgreSQL engines.

    They are applied when the engine is made, from its final URL, so a test's or a
    command's own database URL decides, not the environment's. SQLite engines keep
    SQLAlchemy's pooling for SQLite: a file database's connections are cheap and local,
    and an in-memory one needs its single static connection. Options given explicitly in
    `SQLALCHEMY_ENGINE_OPTIONS` win.
    """

    def _apply_driver_defaults(self, options: dict[str, Any], app: Flask) -> None:
        # Flask-SQLAlchemy's hook for per-driver engine options (tested by
        # tests/servicekit/test_servicekit_container_settings.py on both databases).
        super()._apply_driver_defaults(options, app)
        if make_url(options["url"]).get_backend_name() == "postgresql":
            for keyword, value in app.config.get(DATABASE_POOL_OPTIONS, {}).items():
                options.setdefault(keyword, value)


def make_db() -> SQLAlchemy:
    """A fresh `db` with its own declarative base and metadata."""

    class Base(DeclarativeBase):
        metadata = MetaData(naming_convention=NAMING_CONVENTION)

    return ServiceSQLAlchemy(model_class=Base)


@event.listens_for(Engine, "connect")
def _tune_sqlite(dbapi_connection: object, _record: object) -> None:
    """SQLite is the embedded default: enforce foreign keys and let workers share it."""
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()
