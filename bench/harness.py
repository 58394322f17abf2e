"""What the database benchmarks share: the stack's settings for one load generator,
per-run PostgreSQL databases, query capture and EXPLAIN, timed requests through the
gateway and their percentiles, and users written straight into auth_service's database
(setup, not measured)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import requests
from argon2 import PasswordHasher, Type
from sqlalchemy import Engine, create_engine, event, insert, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from auth_service.models import User, new_public_id
from devstack.stack import RATE_LIMITS_OFF, RunningStack
from servicekit.db import utcnow

PASSWORD = "bench-password-123"
HASH_TIME_COST, HASH_MEMORY_KIB, HASH_PARALLELISM = 1, 1024, 1
SETTINGS = {
    "LOG_LEVEL": "WARNING",
    # Every client is one address: rate limits would measure themselves.
    **RATE_LIMITS_OFF,
    "LOGIN_RATE_LIMIT_USERNAME": "off",
    "LOGIN_RATE_LIMIT_ADDRESS": "off",
    # The racers' logins are setup: cheap hashes (the stored hash has the same cost).
    "PASSWORD_HASH_TIME_COST": str(HASH_TIME_COST),
    "PASSWORD_HASH_MEMORY_KIB": str(HASH_MEMORY_KIB),
    "PASSWORD_HASH_PARALLELISM": str(HASH_PARALLELISM),
}
TIMEOUT = 60


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


# Databases


@contextmanager
def service_database(url: str | None, setting: str) -> Iterator[dict[str, str]]:
    """No setting (the stack's own SQLite file), or `setting` naming a PostgreSQL database
    created for the run and dropped afterwards."""
    if url is None:
        yield {}
        return
    target = make_url(url)
    name = target.database
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield {setting: target.render_as_string(hide_password=False)}
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def database_url(stack: RunningStack, service: str) -> str:
    """The service's database, as the stack configured it (its SQLite file by default)."""
    default = f"sqlite:///{stack.var / f'{service}.db'}"
    return stack.environment.get(f"{service.upper()}_DATABASE_URL", default)


def analyze(engine: Engine) -> None:
    """PostgreSQL's planner statistics and visibility map, as autovacuum would soon make
    them after a bulk load."""
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE"))


def captured_queries(engine: Engine, action: Callable[[Session], Any]) -> list[tuple[str, Any]]:
    """The SQL (and parameters) `action` runs on a session of `engine`."""
    queries: list[tuple[str, Any]] = []

    def record(*arguments: Any) -> None:
        queries.append((arguments[2], arguments[3]))

    event.listen(engine, "before_cursor_execute", record)
    try:
        with Session(engine) as session:
            action(session)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return queries


def explain(engine: Engine, queries: list[tuple[str, Any]]) -> None:
    """EXPLAIN ANALYZE of each captured query (PostgreSQL), printed."""
    with engine.connect() as connection:
        for statement, parameters in queries:
            print(f"\n    {' '.join(statement.split())}")
            plan = connection.exec_driver_sql(
                "EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters
            ).scalars()
            for line in plan:
                print(f"      {line}")


# Requests


def login(gateway: str, username: str, password: str) -> str:
    response = requests.post(
        f"{gateway}/auth/token/",
        json={"username": username, "password": password},
        timeout=TIMEOUT,
    )
    response.raise_for_status()
    return str(response.json()["access"])


@dataclass
class Timing:
    case: str
    requests: int
    per_second: float
    p50_ms: float
    p99_ms: float


def time_requests(
    session: requests.Session, case: str, url: str, duration: float, warm_up: int = 20
) -> Timing:
    """`url` requested one request after another for `duration` seconds; each answer
    must be a 200."""
    for _ in range(warm_up):
        session.get(url, timeout=TIMEOUT).raise_for_status()
    latencies: list[float] = []
    started = time.perf_counter()
    while time.perf_counter() - started < duration:
        sent = time.perf_counter()
        response = session.get(url, timeout=TIMEOUT)
        latencies.append(time.perf_counter() - sent)
        if response.status_code != 200:
            raise SystemExit(f"{case}: {response.status_code} {response.text[:300]}")
    elapsed = time.perf_counter() - started
    return Timing(
        case,
        len(latencies),
        len(latencies) / elapsed,
        percentile(latencies, 0.50) * 1000,
        percentile(latencies, 0.99) * 1000,
    )


def print_timings(timings: list[Timing], database: str) -> None:
    baseline = timings[0]
    print(f"\n| {database} | requests | req/s | p50 | p99 | p50 / baseline | p99 / baseline |")
    print("|---|---|---|---|---|---|---|")
    for timing in timings:
        print(
            f"| {timing.case} | {timing.requests} | {timing.per_second:.0f} "
            f"| {timing.p50_ms:.1f} ms | {timing.p99_ms:.1f} ms "
            f"| {timing.p50_ms / baseline.p50_ms:.1f} | {timing.p99_ms / baseline.p99_ms:.1f} |"
        )


def add_users(auth_url: str, count: int, prefix: str = "racer") -> list[str]:
    """`count` active users written into auth_service's database, one password for all."""
    hashed = PasswordHasher(HASH_TIME_COST, HASH_MEMORY_KIB, HASH_PARALLELISM, type=Type.ID).hash(
        PASSWORD
    )
    names = [f"{prefix}_{number:04d}_{secrets.token_hex(3)}" for number in range(count)]
    engine = create_engine(auth_url)
    with engine.begin() as connection:
        connection.execute(
            insert(User.__table__),
            [
                {
                    "public_id": new_public_id(),
                    "username": name,
                    "email": f"{name}@example.org",
                    "college_name": "Bench College",
                    "password_hash": hashed,
                    "role": "normal",
                    "privileges": {},
                    "is_active": True,
                    "date_joined": utcnow(),
                }
                for name in names
            ],
        )
    engine.dispose()
    return names
