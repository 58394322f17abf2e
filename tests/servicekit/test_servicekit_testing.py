"""The shared test helpers: per-test migrated databases, a clean Redis, test tokens."""

from __future__ import annotations

import jwt
import pytest
import redis
from sqlalchemy import create_engine, text

import activity_service
import events_service
from servicekit.testing import TestKeys
from servicekit.tokens import decode_token


@pytest.mark.parametrize("attempt", [1, 2])
def test_migrated_database_is_fresh_for_each_test(migrated_database, attempt: int) -> None:
    url = migrated_database("activity", activity_service.create_app)
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE IF NOT EXISTS scratch (note VARCHAR(40))"))
            assert connection.execute(text("SELECT count(*) FROM scratch")).scalar() == 0
            connection.execute(text("INSERT INTO scratch (note) VALUES (:n)"), {"n": attempt})
            version = connection.execute(text("SELECT version_num FROM alembic_version"))
            [revision] = version.scalars().all()
            assert revision.startswith("activity_")
    finally:
        engine.dispose()


@pytest.mark.parametrize("attempt", [1, 2])
def test_the_apps_of_one_test_share_its_database_with_the_migrations_rows(
    migrated_database, attempt: int
) -> None:
    first = migrated_database("events", events_service.create_app)
    engine = create_engine(first)
    try:
        with engine.begin() as connection:
            # events_service's migration writes the category every event defaults to.
            names = connection.execute(text("SELECT name FROM categories ORDER BY id"))
            assert names.scalars().all() == ["Others"]
            connection.execute(
                text(
                    "INSERT INTO categories (name, name_key, description, created_at) "
                    "VALUES (:name, :key, '', CURRENT_TIMESTAMP)"
                ),
                {"name": f"Written {attempt}", "key": f"written {attempt}"},
            )
    finally:
        engine.dispose()

    second = migrated_database("events", events_service.create_app)
    engine = create_engine(second)
    try:
        with engine.connect() as connection:
            names = connection.execute(text("SELECT name FROM categories ORDER BY id"))
            assert names.scalars().all() == ["Others", f"Written {attempt}"]
    finally:
        engine.dispose()


def test_service_app_is_ready(service_app) -> None:
    app = service_app("activity", activity_service.create_app)
    assert app.testing
    response = app.test_client().get("/ready")
    assert response.status_code == 200
    assert response.get_json()["service"] == "activity"


@pytest.mark.parametrize("attempt", [1, 2])
def test_redis_client_starts_empty(redis_client: redis.Redis, attempt: int) -> None:
    assert redis_client.dbsize() == 0
    redis_client.set(f"written-by-{attempt}", "1")


def test_test_keys_mint_tokens_the_gateway_accepts(test_keys: TestKeys) -> None:
    token = test_keys.token(sub="u-1", role="staff", priv={"event": "r"})
    claims = decode_token(
        token, test_keys.key_set, issuer="flotilla", audience="flotilla", leeway=0
    )
    assert (claims["sub"], claims["role"], claims["priv"]) == ("u-1", "staff", {"event": "r"})
    assert jwt.get_unverified_header(token)["kid"] == test_keys.kid
    assert b"PRIVATE KEY" in test_keys.private_pem
