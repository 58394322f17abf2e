"""Settings for containers: PostgreSQL pool sizes from the environment, and secrets read
from the files `<NAME>_FILE` names (Kubernetes and compose secrets are files)."""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Engine, create_engine, exc, make_url, text
from sqlalchemy.pool import QueuePool, StaticPool

from gateway.config import GatewayConfig
from media_service.settings import MediaSettings
from servicekit.config import (
    ConfigError,
    env,
    is_secret_variable,
    service_config,
)
from servicekit.settings import SettingsError, load_settings, setting
from servicekit.testing import dispose_engines
from tests.servicekit.servicekit_sample import create_sample_app

# Engines connect lazily: building one against a closed port shows its pool settings.
POSTGRES_NOWHERE = "postgresql+psycopg://flotilla@127.0.0.1:9/nowhere"
POOL_VARIABLES = ("DB_POOL_SIZE", "DB_MAX_OVERFLOW", "DB_POOL_RECYCLE", "DB_POOL_TIMEOUT")
SECRETS = (
    "SERVICE_SECRET",
    "ADMIN_PASSWORD",
    "REDIS_URL",
    "MEDIA_URL_SECRET",
    "SMTP_URL",
    "SAMPLE_DATABASE_URL",
    "AUTH_DATABASE_URL",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in POOL_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
        monkeypatch.delenv(f"SAMPLE_{variable}", raising=False)
    for variable in SECRETS:
        monkeypatch.delenv(variable, raising=False)
        monkeypatch.delenv(f"{variable}_FILE", raising=False)


@pytest.fixture
def build(tmp_path: Path) -> Iterator[Any]:
    """`build(url)`: the sample service on database `url`, its engine made; disposed after."""
    built: list[Flask] = []

    def make(url: str) -> Engine:
        app = create_sample_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True})
        built.append(app)
        with app.app_context():
            engine: Engine = app.extensions["sqlalchemy"].engine
        return engine

    yield make
    dispose_engines(built)


def pool_of(engine: Engine) -> tuple[int, int, int, float]:
    pool = engine.pool
    assert isinstance(pool, QueuePool)
    return pool.size(), pool._max_overflow, pool._recycle, pool._timeout


def secret_file(tmp_path: Path, content: str | bytes, name: str = "secret") -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content)
    else:
        path.write_bytes(content)
    return path


# --- database pools ----------------------------------------------------------------------


def test_postgresql_pools_keep_sqlalchemy_defaults_when_nothing_is_set(build: Any) -> None:
    engine = build(POSTGRES_NOWHERE)

    assert pool_of(engine) == (5, 10, -1, 30)
    assert engine.pool._pre_ping


def test_pool_variables_reach_the_postgresql_engine(
    build: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DB_POOL_SIZE", "3")
    monkeypatch.setenv("DB_MAX_OVERFLOW", "2")
    monkeypatch.setenv("DB_POOL_RECYCLE", "300")
    monkeypatch.setenv("DB_POOL_TIMEOUT", "7")

    engine = build(POSTGRES_NOWHERE)

    assert pool_of(engine) == (3, 2, 300, 7)
    assert engine.pool._pre_ping


def test_a_services_own_pool_variables_win_over_the_suites(
    build: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DB_POOL_SIZE", "9")
    monkeypatch.setenv("DB_MAX_OVERFLOW", "4")
    monkeypatch.setenv("SAMPLE_DB_POOL_SIZE", "2")
    monkeypatch.setenv("OTHER_DB_MAX_OVERFLOW", "0")  # another service's: not this one's

    assert pool_of(build(POSTGRES_NOWHERE))[:2] == (2, 4)


def test_sqlite_engines_keep_their_own_pooling(
    build: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for variable, value in zip(POOL_VARIABLES, ("2", "1", "60", "3"), strict=True):
        monkeypatch.setenv(variable, value)
    url = f"sqlite:///{tmp_path / 'file.db'}"
    plain = create_engine(url)

    engine = build(url)

    assert type(engine.pool) is type(plain.pool)
    assert pool_of(engine) == pool_of(plain) != (2, 1, 60, 3)
    assert isinstance(build("sqlite://").pool, StaticPool)  # in memory: one static connection
    plain.dispose()


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("DB_POOL_SIZE", "0", "must be at least 1"),
        ("DB_POOL_SIZE", "five", "must be an integer"),
        ("DB_MAX_OVERFLOW", "-1", "must be at least 0"),
        ("DB_POOL_RECYCLE", "1.5", "must be an integer"),
        ("DB_POOL_TIMEOUT", "0", "must be at least 1"),
        ("SAMPLE_DB_POOL_SIZE", "-3", "must be at least 1"),
    ],
)
def test_a_bad_pool_value_stops_the_start_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, problem: str
) -> None:
    monkeypatch.setenv(variable, value)

    with pytest.raises(ConfigError) as refused:
        create_sample_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})

    assert f"{variable} {problem}, got {value!r}" in str(refused.value)


def test_every_bad_pool_value_is_named_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_POOL_SIZE", "none")
    monkeypatch.setenv("DB_POOL_TIMEOUT", "-2")

    with pytest.raises(ConfigError) as refused:
        service_config("sample")

    assert "DB_POOL_SIZE" in str(refused.value) and "DB_POOL_TIMEOUT" in str(refused.value)


@pytest.mark.parametrize("package", ["scheduler_service", "datapoints_service", "events_service"])
def test_worker_and_consumer_apps_get_the_pool_settings(
    package: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """RQ jobs and stream consumers build their app with the package's `create_app()`
    (scheduler_service.jobs, datapoints_service.documents.jobs, servicekit.streams)."""
    name = package.removesuffix("_service")
    monkeypatch.setenv("FLOTILLA_VAR_DIR", str(tmp_path))
    monkeypatch.setenv(f"{name.upper()}_DATABASE_URL", POSTGRES_NOWHERE)
    monkeypatch.setenv("DB_POOL_SIZE", "4")
    monkeypatch.setenv("DB_MAX_OVERFLOW", "1")
    app = importlib.import_module(package).create_app()
    with app.app_context():
        engine = app.extensions["sqlalchemy"].engine

    assert pool_of(engine)[:2] == (4, 1)
    dispose_engines([app])


@pytest.fixture
def postgres_server() -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        pytest.skip("TEST_DATABASE_URL is not set: no PostgreSQL to connect to")
    # The server's own maintenance database: these tests need connections, not tables.
    return make_url(url).set(database="postgres").render_as_string(hide_password=False)


def backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


def test_postgresql_pool_opens_at_most_size_plus_overflow_connections(
    build: Any, monkeypatch: pytest.MonkeyPatch, postgres_server: str
) -> None:
    monkeypatch.setenv("DB_POOL_SIZE", "2")
    monkeypatch.setenv("DB_MAX_OVERFLOW", "1")
    monkeypatch.setenv("DB_POOL_TIMEOUT", "1")
    engine = build(postgres_server)

    held = [engine.connect() for _ in range(3)]
    pids = {c.execute(text("SELECT pg_backend_pid()")).scalar_one() for c in held}
    started = time.monotonic()
    with pytest.raises(exc.TimeoutError):
        engine.connect()
    waited = time.monotonic() - started
    for connection in held:
        connection.close()

    assert len(pids) == 3  # three real server sessions
    assert 0.9 <= waited < 5  # it waited DB_POOL_TIMEOUT for one, then gave up
    assert engine.pool.checkedin() == 2  # the overflow connection was closed, not pooled


@pytest.mark.parametrize(("recycle", "same_session"), [("0", True), ("1", False)])
def test_postgresql_connections_are_replaced_after_db_pool_recycle(
    build: Any,
    monkeypatch: pytest.MonkeyPatch,
    postgres_server: str,
    recycle: str,
    same_session: bool,
) -> None:
    monkeypatch.setenv("DB_POOL_SIZE", "1")
    monkeypatch.setenv("DB_POOL_RECYCLE", recycle)
    engine = build(postgres_server)

    first = backend_pid(engine)
    time.sleep(1.3)
    second = backend_pid(engine)

    assert (first == second) is same_session


# --- secrets from files ------------------------------------------------------------------


@pytest.mark.parametrize("variable", SECRETS)
def test_a_secret_is_read_from_its_file(
    variable: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(f"{variable}_FILE", str(secret_file(tmp_path, "s3cret value\n")))

    assert env(variable) == "s3cret value"


def test_only_trailing_line_ends_are_removed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = secret_file(tmp_path, b" two\nlines \r\n\n")
    monkeypatch.setenv("SERVICE_SECRET_FILE", str(path))

    assert env("SERVICE_SECRET") == " two\nlines "


def test_setting_a_secret_and_its_file_is_refused_naming_both(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SERVICE_SECRET", "direct-value")
    monkeypatch.setenv("SERVICE_SECRET_FILE", str(secret_file(tmp_path, "file-value")))

    with pytest.raises(ConfigError) as refused:
        env("SERVICE_SECRET")

    message = str(refused.value)
    assert "SERVICE_SECRET and SERVICE_SECRET_FILE are both set" in message
    assert "direct-value" not in message and "file-value" not in message


def test_an_empty_variable_beside_its_file_counts_as_unset(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """What compose writes for `X: ${X:-}` when X is not set."""
    monkeypatch.setenv("REDIS_URL", "")
    monkeypatch.setenv("REDIS_URL_FILE", str(secret_file(tmp_path, "redis://cache:6379/0")))

    assert env("REDIS_URL") == "redis://cache:6379/0"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (None, "cannot read the file (No such file or directory)"),
        ("", "the file is empty"),
        ("\n\r\n", "the file is empty"),
        (b"\xffhidden-bytes", "the file is not UTF-8 text"),
        ("x" * (64 * 1024 + 1), "the file is larger than 65536 bytes"),
    ],
)
def test_a_secret_file_that_cannot_be_used_stops_naming_variable_and_path(
    content: str | bytes | None, reason: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "missing" if content is None else secret_file(tmp_path, content)
    monkeypatch.setenv("ADMIN_PASSWORD_FILE", str(path))

    with pytest.raises(ConfigError) as refused:
        env("ADMIN_PASSWORD")

    assert str(refused.value) == f"ADMIN_PASSWORD_FILE={path}: {reason}"


def test_a_directory_is_not_a_secret_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SERVICE_SECRET_FILE", str(tmp_path))

    with pytest.raises(ConfigError) as refused:
        env("SERVICE_SECRET")

    assert str(refused.value).startswith(f"SERVICE_SECRET_FILE={tmp_path}: cannot read")


def test_other_variables_keep_their_own_file_meaning(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LOG_LEVEL_FILE", str(secret_file(tmp_path, "DEBUG")))
    monkeypatch.setenv("JWT_PRIVATE_KEY_FILE", str(tmp_path / "key.pem"))

    assert env("LOG_LEVEL", "INFO") == "INFO"
    assert env("JWT_PRIVATE_KEY_FILE") == str(tmp_path / "key.pem")  # a path, not a secret
    assert not is_secret_variable("JWT_PRIVATE_KEY") and not is_secret_variable("LOG_LEVEL")
    assert is_secret_variable("EVENTS_DATABASE_URL") and is_secret_variable("SERVICE_SECRET")


@dataclass(frozen=True)
class FileSettings:
    token: str | None = setting("SAMPLE_API_TOKEN", None, secret=True)
    label: str = setting("SAMPLE_LABEL", "plain")
    count: int = setting("SAMPLE_COUNT", 1, minimum=1)


def test_secret_settings_come_from_files_and_others_do_not(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("SAMPLE_API_TOKEN", raising=False)
    monkeypatch.delenv("SAMPLE_LABEL", raising=False)
    monkeypatch.setenv("SAMPLE_API_TOKEN_FILE", str(secret_file(tmp_path, "tok\n", "token")))
    monkeypatch.setenv("SAMPLE_LABEL_FILE", str(secret_file(tmp_path, "from-file", "label")))

    settings = load_settings(FileSettings)

    assert settings.token == "tok" and settings.label == "plain"


def test_a_bad_secret_file_is_named_with_the_other_setting_problems(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("SAMPLE_API_TOKEN", raising=False)
    monkeypatch.setenv("SAMPLE_API_TOKEN_FILE", str(tmp_path / "absent"))
    monkeypatch.setenv("SAMPLE_COUNT", "0")

    with pytest.raises(SettingsError) as refused:
        load_settings(FileSettings)

    assert f"SAMPLE_API_TOKEN_FILE={tmp_path / 'absent'}: cannot read" in str(refused.value)
    assert "SAMPLE_COUNT: must be at least 1" in str(refused.value)


def test_a_services_config_takes_its_secrets_from_files(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    database = f"sqlite:///{tmp_path / 'from-file.db'}"
    monkeypatch.setenv("SAMPLE_DATABASE_URL_FILE", str(secret_file(tmp_path, database, "db")))
    monkeypatch.setenv("REDIS_URL_FILE", str(secret_file(tmp_path, "redis://r:6379/2", "r")))
    monkeypatch.setenv("SERVICE_SECRET_FILE", str(secret_file(tmp_path, "shared\n", "s")))

    config = service_config("sample")

    assert config["SQLALCHEMY_DATABASE_URI"] == database
    assert config["REDIS_URL"] == "redis://r:6379/2"
    assert config["SERVICE_SECRET"] == "shared"


def test_a_service_does_not_start_with_a_missing_secret_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SERVICE_SECRET_FILE", str(tmp_path / "not-mounted"))

    with pytest.raises(ConfigError, match=r"SERVICE_SECRET_FILE=.*not-mounted: cannot read"):
        create_sample_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})


def test_media_url_secret_comes_from_its_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MEDIA_URL_SECRET_FILE", str(secret_file(tmp_path, "signing-secret\n")))

    assert load_settings(MediaSettings).url_secret == "signing-secret"


def test_the_gateway_reads_redis_url_from_its_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("REDIS_URL_FILE", str(secret_file(tmp_path, "redis://gw:6379/4\n")))

    assert GatewayConfig.from_environment().redis_url == "redis://gw:6379/4"

    monkeypatch.setenv("REDIS_URL", "redis://direct:6379/0")
    with pytest.raises(ConfigError, match="REDIS_URL and REDIS_URL_FILE are both set"):
        GatewayConfig.from_environment()
