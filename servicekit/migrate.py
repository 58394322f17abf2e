"""`python -m servicekit.migrate <package>`: one service's database upgraded to head,
safely when several copies start at once (two replicas, a retried job).

    python -m servicekit.migrate auth_service

The service's app is built as its processes build it (same variables: its
`<NAME>_DATABASE_URL`, `FLOTILLA_VAR_DIR`, ...), then, under a lock held for the whole
upgrade, its Alembic migrations run to head. Whoever takes the lock second finds the
database at head and does nothing.

- PostgreSQL: a session advisory lock (`pg_advisory_lock`) on a key derived from the
  package name, taken on the connection the migrations run on; it is released when the
  upgrade ends, or by the server when the connection dies.
- SQLite: an exclusive `flock` on `<database file>.migrate-lock` beside the database
  file (processes of one machine; an in-memory database takes no lock).
- Any other database: no lock; a warning says so.

Exit codes: 0 the database is at head (upgraded now, or already); 1 the upgrade failed
(the log names the error and the revision the database is left at; retrying will not
help until the cause is fixed); 2 the command cannot start (no such service package, or
its settings are invalid); 3 the database cannot be reached (retrying may help).
One JSON log line per step on stderr, like every Flotilla process.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import importlib
import logging
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask
from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.exc import DBAPIError, OperationalError

from servicekit.observability import configure_logging

EXIT_AT_HEAD = 0
EXIT_UPGRADE_FAILED = 1
EXIT_CANNOT_START = 2
EXIT_DATABASE_UNREACHABLE = 3

log = logging.getLogger("servicekit.migrate")


class CannotStart(Exception):
    """The package is not a service this command can migrate, or its app cannot be built."""


def lock_key(package: str) -> int:
    """The advisory lock key of a service's migrations: a signed 64-bit integer, the same
    in every process (Python's hash() is salted per process)."""
    digest = hashlib.sha256(f"flotilla.migrate:{package}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@dataclass(frozen=True)
class Target:
    """A service's app (for its engine and Flask-Migrate settings) and its script folder."""

    package: str
    app: Flask

    @property
    def engine(self) -> Engine:
        engine: Engine = self.app.extensions["migrate"].db.engine
        return engine

    def alembic_config(self) -> Any:
        return self.app.extensions["migrate"].migrate.get_config()

    def heads(self) -> tuple[str, ...]:
        return tuple(ScriptDirectory.from_config(self.alembic_config()).get_heads())


def load_target(package: str) -> Target:
    if not package.isidentifier():
        raise CannotStart(f"{package!r} is not a Python package name")
    try:
        module = importlib.import_module(package)
    except ModuleNotFoundError as exc:
        if exc.name != package:
            raise
        raise CannotStart(f"no package {package!r} in this image or checkout") from None
    factory = getattr(module, "create_app", None)
    if factory is None:
        raise CannotStart(f"{package!r} is not a Flotilla service: it has no create_app()")
    try:
        app: Flask = factory()
    except Exception as exc:  # a bad setting stops every start the same way
        raise CannotStart(f"{package}'s app cannot be built: {exc}") from exc
    if "migrate" not in app.extensions:
        raise CannotStart(f"{package!r} has no migrations")
    return Target(package, app)


def current_revisions(connection: Connection) -> tuple[str, ...]:
    revisions = tuple(MigrationContext.configure(connection).get_current_heads())
    connection.commit()  # the read opened a transaction; Alembic opens its own
    return revisions


def describe(revisions: Sequence[str]) -> str:
    return ", ".join(revisions) if revisions else "no revision (empty database)"


@contextmanager
def migration_lock(connection: Connection, package: str) -> Iterator[None]:
    dialect = connection.dialect.name
    if dialect == "postgresql":
        with _advisory_lock(connection, package):
            yield
    elif dialect == "sqlite":
        with _file_lock(connection.engine.url.database, package):
            yield
    else:
        log.warning("%s: no migration lock on %s: run one migrate at a time", package, dialect)
        yield


@contextmanager
def _advisory_lock(connection: Connection, package: str) -> Iterator[None]:
    key = lock_key(package)
    if not connection.execute(select(func.pg_try_advisory_lock(key))).scalar():
        log.info("%s: waiting for the migration lock: another migrate is running", package)
        connection.execute(select(func.pg_advisory_lock(key)))
    connection.commit()  # a session lock: it outlives the transaction that took it
    log.info("%s: migration lock taken (PostgreSQL advisory lock %d)", package, key)
    try:
        yield
    finally:
        connection.rollback()  # a failed upgrade leaves its transaction aborted
        connection.execute(select(func.pg_advisory_unlock(key)))
        connection.commit()


@contextmanager
def _file_lock(database: str | None, package: str) -> Iterator[None]:
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        yield
        return
    path = Path(f"{database}.migrate-lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("%s: waiting for the migration lock: another migrate is running", package)
            fcntl.flock(handle, fcntl.LOCK_EX)
        log.info("%s: migration lock taken (%s)", package, path)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def upgrade(target: Target, connection: Connection) -> None:
    """Upgrade to head on `connection` (migrations_env runs Alembic on it), unless there."""
    heads = target.heads()
    current = current_revisions(connection)
    if set(current) == set(heads):
        log.info("%s: at head %s: nothing to do", target.package, describe(heads))
        return
    log.info("%s: upgrading from %s to %s", target.package, describe(current), describe(heads))
    started = time.monotonic()
    config = target.alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
    connection.commit()
    elapsed = time.monotonic() - started
    log.info("%s: upgraded to %s in %.2f s", target.package, describe(heads), elapsed)


def revision_after_failure(target: Target) -> str:
    try:
        with target.engine.connect() as connection:
            return describe(current_revisions(connection))
    except DBAPIError:
        return "unknown (the database cannot be read)"


def migrate(package: str) -> int:
    try:
        target = load_target(package)
    except CannotStart as exc:
        log.error("%s: cannot start: %s", package, exc)
        return EXIT_CANNOT_START
    with target.app.app_context():
        engine = target.engine
        log.info("%s: database %s", package, engine.url.render_as_string(hide_password=True))
        try:
            connection = engine.connect()
        except OperationalError as exc:
            log.error("%s: database unreachable: %s", package, _first_line(exc))
            return EXIT_DATABASE_UNREACHABLE
        try:
            with connection, migration_lock(connection, package):
                upgrade(target, connection)
        except Exception as exc:  # any failure of a migration is reported the same way
            log.error(
                "%s: upgrade failed, the database is at %s: %s: %s",
                package,
                revision_after_failure(target),
                type(exc).__name__,
                _first_line(exc),
            )
            return EXIT_UPGRADE_FAILED
        finally:
            engine.dispose()
    return EXIT_AT_HEAD


def _first_line(exc: BaseException) -> str:
    """The driver's message without SQLAlchemy's statement dump and background link."""
    message = str(getattr(exc, "orig", None) or exc)
    return message.strip().splitlines()[0] if message.strip() else type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m servicekit.migrate",
        description="Upgrade one service's database to head, under a lock.",
        epilog="Exit codes: 0 at head, 1 upgrade failed, 2 cannot start, 3 database unreachable.",
    )
    parser.add_argument("package", help="the service's package, e.g. auth_service")
    arguments = parser.parse_args(argv)
    configure_logging(os.environ.get("LOG_LEVEL", "INFO"))
    return migrate(arguments.package)


if __name__ == "__main__":
    sys.exit(main())
