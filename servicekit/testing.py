"""Test helpers shared by every service's tests (a pytest plugin: `servicekit.testing`).

- `test_keys`: an RSA key pair, its JWKS, and `test_keys.token(...)` to mint tokens.
- `migrated_database`: a database per test with the service's migrations applied
  (a copied SQLite file, or PostgreSQL when `TEST_DATABASE_URL` is set).
- `redis_url`: a real Redis: `TEST_REDIS_URL` when set, else a private redis-server.
- `service_app`: build a service's app on a fresh database with the test keys.
- `make_app`, `app`, `client`: the app of the service under test. A service's conftest
  declares which service that is, once, by overriding `service_under_test`; a test sets
  its app's settings with `@pytest.mark.parametrize("app_config", [{...}], indirect=True)`
  or calls `make_app(**settings)`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import pytest
import redis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade
from sqlalchemy import Engine, MetaData, create_engine, inspect, text
from sqlalchemy.engine import URL, make_url
from werkzeug.serving import make_server

from devstack.redis_server import start_redis
from servicekit.keys import KeyResolver, StaticKeySet, public_jwk

AppFactory = Callable[..., Flask]


class TestKeys:
    """A signing key for tests, published as a JWKS like auth_service's."""

    __test__ = False  # not a test class, whatever its name says

    def __init__(self, kid: str | None = None) -> None:
        self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = kid or uuid.uuid4().hex[:16]
        self.jwks = {"keys": [public_jwk(self.private_key.public_key(), self.kid)]}
        self.key_set = StaticKeySet(self.jwks)

    @property
    def private_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def token(
        self,
        sub: str = "user-1",
        username: str = "user",
        role: str = "normal",
        priv: dict[str, str] | None = None,
        *,
        ttl: int = 900,
        token_type: str = "access",
        issuer: str = "flotilla",
        audience: str = "flotilla",
        headers: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        now = time.time()
        payload: dict[str, Any] = {
            "sub": sub,
            "username": username,
            "role": role,
            "priv": priv or {},
            "jti": uuid.uuid4().hex,
            "iat": round(now, 3),
            "exp": int(now + ttl),
            "iss": issuer,
            "aud": audience,
            "type": token_type,
            **claims,
        }
        return jwt.encode(
            payload,
            self.private_key,
            algorithm="RS256",
            headers={"kid": self.kid, **(headers or {})},
        )


class MigratedDatabase:
    """Per-test databases for one service, migrated once per test session.

    Every app a test builds for the service shares the test's one database. On SQLite
    it is a copy of the migrated template; on PostgreSQL the session's database, emptied
    for the test and given back the rows the migrations wrote (seed data).
    """

    def __init__(self, service: str, factory: AppFactory, root: Path) -> None:
        self.service = service
        self.factory = factory
        self.root = root
        self.server_url = os.environ.get("TEST_DATABASE_URL")
        self._ready = False
        self._seed_rows: dict[str, list[dict[str, Any]]] = {}
        self._schema = MetaData()
        self._sequences: list[str] = []
        self._prepared: dict[Path, str] = {}

    def url_for_test(self, test_dir: Path) -> str:
        if test_dir not in self._prepared:
            self._prepared[test_dir] = self._prepare(test_dir)
        return self._prepared[test_dir]

    def _prepare(self, test_dir: Path) -> str:
        if self.server_url:
            return self._postgres_url()
        template = self.root / f"{self.service}-template.db"
        if not self._ready:
            self._migrate(f"sqlite:///{template}")
            self._ready = True
        target = test_dir / f"{self.service}.db"
        shutil.copyfile(template, target)
        return f"sqlite:///{target}"

    def _postgres_url(self) -> str:
        assert self.server_url is not None
        base = make_url(self.server_url)
        url = base.set(database=f"{base.database or 'flotilla_test'}_{self.service}")
        rendered = url.render_as_string(hide_password=False)
        if not self._ready:
            recreate_postgres_database(base, url.database or "")
            self._migrate(rendered)
            self._read_schema(rendered)
            self._ready = True
        else:
            self._reset_to_seed(rendered)
        return rendered

    def _read_schema(self, url: str) -> None:
        """The tables, the id sequences and every row right after migrating (the seed
        data: a few rows)."""
        engine = create_engine(url)
        self._schema.reflect(engine, only=_tables(engine))
        with engine.connect() as connection:
            for table in self._schema.sorted_tables:
                rows = [dict(row._mapping) for row in connection.execute(table.select())]
                if rows:
                    self._seed_rows[table.name] = rows
            self._sequences = list(
                connection.execute(
                    text("SELECT sequence_name FROM information_schema.sequences")
                ).scalars()
            )
        engine.dispose()

    def _reset_to_seed(self, url: str) -> None:
        """Back to the migrated state: tables a test added dropped, every table emptied
        (children first: a DELETE of a few rows is several times cheaper than a
        TRUNCATE), the id sequences restarted, and the migrations' rows put back with
        each sequence moved past them."""
        engine = create_engine(url)
        added = set(_tables(engine)) - set(self._schema.tables)
        with engine.begin() as connection:
            for name in sorted(added):
                connection.execute(text(f'DROP TABLE "{name}" CASCADE'))
            for table in reversed(self._schema.sorted_tables):
                connection.execute(table.delete())
            for sequence in self._sequences:
                connection.execute(text(f'ALTER SEQUENCE "{sequence}" RESTART'))
            for name, rows in self._seed_rows.items():
                table = self._schema.tables[name]
                connection.execute(table.insert(), rows)
                if "id" in table.c:
                    connection.execute(
                        text(
                            "SELECT setval(pg_get_serial_sequence(:table, 'id'), MAX(id)) "
                            f'FROM "{name}"'
                        ),
                        {"table": name},
                    )
        engine.dispose()

    def _migrate(self, url: str) -> None:
        app = self.factory({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True})
        with app.app_context():
            upgrade()
            app.extensions["sqlalchemy"].engine.dispose()


def recreate_postgres_database(server_url: str | URL, name: str) -> None:
    """Drop and create database `name` on the server of `server_url` (tests only)."""
    server = make_url(server_url)
    admin = create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()


def _tables(engine: Engine) -> list[str]:
    return [t for t in inspect(engine).get_table_names() if t != "alembic_version"]


@pytest.fixture(scope="session")
def test_keys() -> TestKeys:
    return TestKeys()


@pytest.fixture(scope="session")
def _migrated_databases() -> dict[str, MigratedDatabase]:
    return {}


@pytest.fixture(scope="session")
def _database_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("databases")


@pytest.fixture
def migrated_database(
    _migrated_databases: dict[str, MigratedDatabase], _database_root: Path, tmp_path: Path
) -> Callable[[str, AppFactory], str]:
    """`migrated_database("auth", auth_service.create_app)` -> a fresh, migrated DB URL."""

    def make(service: str, factory: AppFactory) -> str:
        if service not in _migrated_databases:
            _migrated_databases[service] = MigratedDatabase(service, factory, _database_root)
        return _migrated_databases[service].url_for_test(tmp_path)

    return make


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    configured = os.environ.get("TEST_REDIS_URL")
    if configured:
        yield configured
        return
    process, url = start_redis(tmp_path_factory.mktemp("redis"))
    yield url
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A clean Redis database for this test."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def service_app(
    migrated_database: Callable[[str, AppFactory], str], test_keys: TestKeys, redis_url: str
) -> Iterator[Callable[..., Flask]]:
    """`service_app("auth", auth_service.create_app, **config)` -> a ready test app.

    It verifies tokens with the test keys, or with `keys=` when given (e.g. the keys of
    an auth_service app of the same test). Each service gets its own database.
    """
    built: list[Flask] = []

    def make(
        service: str, factory: AppFactory, *, keys: KeyResolver | None = None, **config: Any
    ) -> Flask:
        settings = {
            "SQLALCHEMY_DATABASE_URI": migrated_database(service, factory),
            "TESTING": True,
            "REDIS_URL": redis_url,
            **config,
        }
        app = factory(settings, keys=keys if keys is not None else test_keys.key_set)
        built.append(app)
        return app

    yield make
    dispose_engines(built)


@dataclass(frozen=True)
class ServiceUnderTest:
    """Which service a test package builds, and the settings every app of it gets."""

    name: str
    factory: AppFactory
    config: dict[str, Any] = field(default_factory=dict)


@pytest.fixture
def service_under_test() -> ServiceUnderTest:
    raise pytest.UsageError(
        "this test package declares no service: override the `service_under_test` fixture"
    )


@pytest.fixture
def make_app(
    service_app: Callable[..., Flask], service_under_test: ServiceUnderTest
) -> Callable[..., Flask]:
    """`make_app(**settings)`: an app of the service under test on this test's database."""

    def make(**config: Any) -> Flask:
        settings = {**service_under_test.config, **config}
        return service_app(service_under_test.name, service_under_test.factory, **settings)

    return make


@pytest.fixture
def app_config(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Settings of this test's app: `parametrize("app_config", [{...}], indirect=True)`."""
    return dict(getattr(request, "param", {}))


@pytest.fixture
def app(make_app: Callable[..., Flask], app_config: dict[str, Any]) -> Flask:
    return make_app(**app_config)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def dispose_engines(apps: list[Flask]) -> None:
    """Close the database connections of apps a test built."""
    for app in apps:
        with app.app_context():
            app.extensions["sqlalchemy"].engine.dispose()


@contextmanager
def serve_wsgi(app: Any) -> Iterator[str]:
    """Serve a WSGI app on a free loopback port (threaded werkzeug); yield its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chromium_dom(url: str, profile_dir: Path, budget_ms: int = 20_000) -> str:
    """The DOM of `url` after its scripts ran, rendered by headless Chromium (Debian's)."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        raise RuntimeError("Chromium is needed for this test: apt-get install chromium")
    completed = subprocess.run(
        [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}",
         f"--virtual-time-budget={budget_ms}", "--dump-dom", url],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return completed.stdout
