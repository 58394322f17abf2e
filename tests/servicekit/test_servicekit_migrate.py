"""`python -m servicekit.migrate <package>`: real processes against a real database.

Two copies started while the test holds the migration lock both wait for it, then one
upgrades and the other finds the database at head; a migration that fails exits 1 and
says why; the admin bootstrap run twice at once creates one admin. On SQLite always, on
PostgreSQL when TEST_DATABASE_URL names a server (a database of this file's own).
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Connection, create_engine, func, select, text
from sqlalchemy.engine import make_url

from servicekit.migrate import (
    EXIT_AT_HEAD,
    EXIT_CANNOT_START,
    EXIT_DATABASE_UNREACHABLE,
    EXIT_UPGRADE_FAILED,
    lock_key,
)
from servicekit.testing import recreate_postgres_database

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "auth_service"
HEAD = "auth_0004"
WAITING = "waiting for the migration lock"
DEADLINE = 60.0


@dataclass
class Database:
    url: str
    dialect: str


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    if request.param == "sqlite":
        return Database(f"sqlite:///{tmp_path / 'auth.db'}", "sqlite")
    server = os.environ.get("TEST_DATABASE_URL")
    if not server:
        pytest.skip("TEST_DATABASE_URL names no PostgreSQL server")
    base = make_url(server)
    url = base.set(database=f"{base.database or 'flotilla_test'}_migrate")
    recreate_postgres_database(base, url.database or "")
    return Database(url.render_as_string(hide_password=False), "postgresql")


def process_env(tmp_path: Path, database_url: str, redis_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "FLOTILLA_VAR_DIR": str(tmp_path / "var"),
        "AUTH_DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "LOG_LEVEL": "INFO",
    }


@dataclass
class Run:
    process: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def finish(self) -> tuple[int, str]:
        return self.process.wait(timeout=DEADLINE), self.text()


def start(argv: list[str], env: dict[str, str], log: Path) -> Run:
    with log.open("wb") as handle:
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=handle, stderr=handle)
    return Run(process, log)


def start_migrate(tmp_path: Path, env: dict[str, str], name: str, package: str = PACKAGE) -> Run:
    argv = [sys.executable, "-m", "servicekit.migrate", package]
    return start(argv, env, tmp_path / f"{name}.log")


def wait_until_logged(runs: list[Run], fragment: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not all(fragment in run.text() for run in runs):
        exited = [run.text() for run in runs if run.process.poll() is not None]
        assert not exited, f"a migrate exited before logging {fragment!r}:\n" + "\n".join(exited)
        assert time.monotonic() < deadline, f"{fragment!r} never logged by every migrate"
        time.sleep(0.05)


@contextmanager
def migration_lock_held(database: Database) -> Iterator[None]:
    """The lock servicekit.migrate takes, held by this test."""
    if database.dialect == "sqlite":
        path = Path(f"{make_url(database.url).database}.migrate-lock")
        with path.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield
        return
    engine = create_engine(database.url)
    with engine.connect() as connection:
        connection.execute(select(func.pg_advisory_lock(lock_key(PACKAGE))))
        try:
            yield
        finally:
            connection.execute(select(func.pg_advisory_unlock(lock_key(PACKAGE))))
    engine.dispose()


def revisions(database_url: str) -> list[str]:
    engine = create_engine(database_url)
    with engine.connect() as connection:
        found = list(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())
    engine.dispose()
    return found


def test_two_migrates_started_together_wait_for_one_another(
    database: Database, tmp_path: Path, redis_url: str
) -> None:
    env = process_env(tmp_path, database.url, redis_url)
    with migration_lock_held(database):
        runs = [start_migrate(tmp_path, env, f"migrate-{n}") for n in (1, 2)]
        wait_until_logged(runs, WAITING)
    results = [run.finish() for run in runs]

    assert [code for code, _ in results] == [EXIT_AT_HEAD, EXIT_AT_HEAD], results
    logs = [log for _, log in results]
    upgraded = [log for log in logs if f"upgraded to {HEAD}" in log]
    untouched = [log for log in logs if f"at head {HEAD}: nothing to do" in log]
    assert len(upgraded) == 1 and len(untouched) == 1, logs
    assert "Running upgrade" not in untouched[0]
    assert revisions(database.url) == [HEAD]


def test_a_migrate_of_a_database_at_head_does_nothing(
    database: Database, tmp_path: Path, redis_url: str
) -> None:
    env = process_env(tmp_path, database.url, redis_url)
    first = start_migrate(tmp_path, env, "first").finish()
    second = start_migrate(tmp_path, env, "second").finish()
    assert first[0] == second[0] == EXIT_AT_HEAD, (first, second)
    assert f"at head {HEAD}: nothing to do" in second[1]
    assert revisions(database.url) == [HEAD]


def test_a_failing_migration_exits_1_with_its_reason(
    database: Database, tmp_path: Path, redis_url: str
) -> None:
    # A table of the name the second migration creates: the upgrade cannot go through.
    engine = create_engine(database.url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE users (id INTEGER PRIMARY KEY)"))
    engine.dispose()
    code, log = start_migrate(
        tmp_path, process_env(tmp_path, database.url, redis_url), "failing"
    ).finish()

    assert code == EXIT_UPGRADE_FAILED, log
    assert "upgrade failed" in log and "users" in log and "already exists" in log, log
    assert "Traceback" not in log
    if database.dialect == "postgresql":
        # One transaction for the whole upgrade: nothing of it stays.
        assert "the database is at no revision (empty database)" in log, log


def test_an_unknown_package_cannot_start(tmp_path: Path, redis_url: str) -> None:
    env = process_env(tmp_path, f"sqlite:///{tmp_path / 'auth.db'}", redis_url)
    code, log = start_migrate(tmp_path, env, "unknown", package="no_such_service").finish()
    assert code == EXIT_CANNOT_START, log
    assert "no package 'no_such_service'" in log


def test_an_unreachable_database_exits_3(tmp_path: Path, redis_url: str) -> None:
    from devstack.redis_server import free_port

    url = f"postgresql+psycopg://flotilla@127.0.0.1:{free_port()}/flotilla_auth"
    code, log = start_migrate(tmp_path, process_env(tmp_path, url, redis_url), "down").finish()
    assert code == EXIT_DATABASE_UNREACHABLE, log
    assert "database unreachable" in log and "Connection refused" in log, log


def waiting_inserts(connection: Connection, database_name: str) -> int:
    query = text(
        "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
        "WHERE d.datname = :name AND l.locktype = 'relation' AND NOT l.granted"
    )
    return int(connection.execute(query, {"name": database_name}).scalar_one())


def test_the_admin_bootstrap_run_twice_at_once_creates_one_admin(
    tmp_path: Path, redis_url: str
) -> None:
    server = os.environ.get("TEST_DATABASE_URL")
    if not server:
        pytest.skip("TEST_DATABASE_URL names no PostgreSQL server")
    base = make_url(server)
    url = base.set(database=f"{base.database or 'flotilla_test'}_migrate_admin")
    recreate_postgres_database(base, url.database or "")
    database_url = url.render_as_string(hide_password=False)
    env = {
        **process_env(tmp_path, database_url, redis_url),
        "ADMIN_USERNAME": "admin",
        "ADMIN_PASSWORD": "a-long-enough-admin-password",
    }
    assert start_migrate(tmp_path, env, "migrate").finish()[0] == EXIT_AT_HEAD

    # Both commands find no admin, then both insert: the table lock holds their INSERTs
    # until both are waiting, so the unique constraint decides between them.
    engine = create_engine(database_url)
    argv = [sys.executable, "-m", "flask", "--app", PACKAGE, "create-admin"]
    with engine.connect() as locker:
        locker.execute(text("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE"))
        runs = [start(argv, env, tmp_path / f"admin-{n}.log") for n in (1, 2)]
        deadline = time.monotonic() + DEADLINE
        with engine.connect() as watcher:
            while waiting_inserts(watcher, url.database or "") < 2:
                assert all(run.process.poll() is None for run in runs), [r.text() for r in runs]
                assert time.monotonic() < deadline, "the two bootstraps never both inserted"
                time.sleep(0.05)
        locker.rollback()
    results = [run.finish() for run in runs]
    with engine.connect() as connection:
        admins = connection.execute(text("SELECT role FROM users WHERE username = 'admin'"))
        roles = list(admins.scalars())
    engine.dispose()

    assert [code for code, _ in results] == [0, 0], results
    outputs = sorted(log.strip().splitlines()[-1] for _, log in results)
    assert outputs == ["admin 'admin' created", "admin 'admin' exists already"], results
    assert roles == ["superuser"]
