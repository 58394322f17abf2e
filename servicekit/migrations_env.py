"""The Alembic environment shared by every service's `migrations/env.py`.

A service's env.py is two lines (`from servicekit.migrations_env import run; run()`):
the logic of running migrations is the same everywhere, only the database differs.
Alembic runs on the connection a caller put in `config.attributes["connection"]`
(servicekit.migrate: the one holding the migration lock), else on a new one.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from alembic import context
from flask import current_app
from sqlalchemy import Connection, MetaData

from servicekit.db import POSTGRESQL_ONLY

if TYPE_CHECKING:
    from alembic.operations.ops import MigrationScript
    from alembic.runtime.migration import MigrationContext

log = logging.getLogger("alembic.env")


def _metadata() -> MetaData:
    metadata: MetaData = current_app.extensions["migrate"].db.metadata
    return metadata


def _run_offline() -> None:
    url = current_app.config["SQLALCHEMY_DATABASE_URI"]
    context.configure(url=url, target_metadata=_metadata(), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def _skip_empty_autogenerate(
    ctx: MigrationContext, revision: object, directives: list[MigrationScript]
) -> None:
    if getattr(context.config.cmd_opts, "autogenerate", False):
        upgrade_ops = directives[0].upgrade_ops
        if upgrade_ops is None or upgrade_ops.is_empty():
            directives[:] = []
            log.info("No changes in schema detected.")


def _include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Leave out of schema comparisons what a model's table lists as made by hand in a
    PostgreSQL-only migration (`info={POSTGRESQL_ONLY: (names...)}`), deliberately absent
    from the model."""
    if reflected and compare_to is None and type_ in ("column", "index"):
        table = _metadata().tables.get(obj.table.name)
        if table is not None and name in table.info.get(POSTGRESQL_ONLY, ()):
            return False
    return True


def _run_online() -> None:
    # `python -m servicekit.migrate` passes the connection that holds its migration lock.
    given: Connection | None = context.config.attributes.get("connection")
    if given is not None:
        _run_on(given)
        return
    engine = current_app.extensions["migrate"].db.engine
    with engine.connect() as connection:
        _run_on(connection)


def _run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=_metadata(),
        process_revision_directives=_skip_empty_autogenerate,
        include_object=_include_object,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run() -> None:
    if context.is_offline_mode():
        _run_offline()
    else:
        _run_online()
