"""The admin account: `ensure_admin` and the `create-admin` / `create-superuser` commands."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import redis
from flask import Flask

import auth_service
from auth_service.context import auth_context
from auth_service.models import RefreshToken, User, db, utcnow
from auth_service.service import ensure_admin
from servicekit.revocation import user_key

PASSWORD = "admin password 1"


def users(app: Flask) -> list[User]:
    with app.app_context():
        return list(db.session.query(User).order_by(User.id))


def test_ensure_admin_creates_once(app: Flask) -> None:
    with app.app_context():
        assert ensure_admin(auth_context(app), "admin", PASSWORD) is True
        assert ensure_admin(auth_context(app), "admin", "another password") is False

    (admin,) = users(app)
    assert (admin.username, admin.role, admin.is_active) == ("admin", "superuser", True)
    response = app.test_client().post(
        "/auth/token/", json={"username": "admin", "password": PASSWORD}
    )
    assert response.status_code == 200


@pytest.mark.parametrize(("username", "password"), [("admin", "short"), ("a b", PASSWORD)])
def test_ensure_admin_refuses_bad_values(app: Flask, username: str, password: str) -> None:
    with app.app_context(), pytest.raises(ValueError):
        ensure_admin(auth_context(app), username, password)
    assert users(app) == []


def test_create_admin_command(app: Flask) -> None:
    runner = app.test_cli_runner()
    env = {"ADMIN_USERNAME": "root", "ADMIN_PASSWORD": PASSWORD}

    first = runner.invoke(args=["create-admin"], env=env)
    second = runner.invoke(args=["create-admin"], env=env)

    assert first.exit_code == 0, first.output
    assert "created" in first.output
    assert second.exit_code == 0, second.output
    assert "exists" in second.output
    assert [(u.username, u.role) for u in users(app)] == [("root", "superuser")]


def test_create_admin_uses_admin_by_default(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ADMIN_USERNAME", raising=False)

    result = app.test_cli_runner().invoke(args=["create-admin"], env={"ADMIN_PASSWORD": PASSWORD})

    assert result.exit_code == 0, result.output
    assert [u.username for u in users(app)] == ["admin"]


def test_create_admin_without_password_fails_clearly(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ADMIN_PASSWORD", raising=False)

    result = app.test_cli_runner().invoke(args=["create-admin"])

    assert result.exit_code != 0
    assert "ADMIN_PASSWORD" in result.output
    assert users(app) == []


def test_create_admin_with_a_weak_password_fails(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["create-admin"], env={"ADMIN_PASSWORD": "admin"})

    assert result.exit_code != 0
    assert "password" in result.output
    assert users(app) == []


def test_create_superuser_prompts_for_the_password(app: Flask) -> None:
    runner = app.test_cli_runner()

    result = runner.invoke(
        args=["create-superuser", "--username", "boss"], input=f"{PASSWORD}\n{PASSWORD}\n"
    )
    again = runner.invoke(
        args=["create-superuser", "--username", "boss"], input=f"{PASSWORD}\n{PASSWORD}\n"
    )

    assert result.exit_code == 0, result.output
    assert again.exit_code != 0
    assert "exists" in again.output
    assert [(u.username, u.role) for u in users(app)] == [("boss", "superuser")]


def test_creating_the_app_does_not_touch_the_database(tmp_path: Path) -> None:
    """Commands and `db upgrade` build the app before any table exists."""
    database = tmp_path / "fresh" / "auth.db"

    auth_service.create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{database}"})

    assert not database.exists()


def test_grant_and_revoke_staff(app: Flask, redis_client: redis.Redis) -> None:
    with app.app_context():
        ensure_admin(auth_context(app), "future_staff", PASSWORD)
        user = db.session.query(User).filter_by(username="future_staff").one()
        user.role = "normal"
        db.session.commit()
    runner = app.test_cli_runner()

    granted = runner.invoke(
        args=["grant-staff", "future_staff", "--privilege", "event:cr", "--privilege", "user:r"]
    )

    assert granted.exit_code == 0, granted.output
    (staff,) = users(app)
    assert staff.role == "staff"
    assert staff.privileges == {"event": ["create", "read"], "user": ["read"]}
    assert redis_client.exists(user_key(staff.public_id))
    assert staff.tokens_valid_after is not None

    revoked = runner.invoke(args=["revoke-staff", "future_staff"])

    assert revoked.exit_code == 0, revoked.output
    (normal,) = users(app)
    assert (normal.role, normal.privileges) == ("normal", {})


@pytest.mark.parametrize(
    "args",
    [
        ["grant-staff", "nobody"],
        ["grant-staff", "admin", "--privilege", "event:cx"],
        ["grant-staff", "admin", "--privilege", "event"],
        ["grant-staff", "admin", "--privilege", "bad name:r"],
        ["revoke-staff", "nobody"],
    ],
)
def test_staff_commands_refuse_bad_arguments(app: Flask, args: list[str]) -> None:
    with app.app_context():
        ensure_admin(auth_context(app), "admin", PASSWORD)

    result = app.test_cli_runner().invoke(args=args)

    assert result.exit_code != 0
    assert [(u.username, u.role) for u in users(app)] == [("admin", "superuser")]


def test_purge_expired_tokens(app: Flask) -> None:
    client = app.test_client()
    with app.app_context():
        ensure_admin(auth_context(app), "admin", PASSWORD)
    client.post("/auth/token/", json={"username": "admin", "password": PASSWORD})
    client.post("/auth/token/", json={"username": "admin", "password": PASSWORD})
    with app.app_context():
        db.session.query(RefreshToken).limit(1).one().expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()

    result = app.test_cli_runner().invoke(args=["purge-expired-tokens"])

    assert result.exit_code == 0, result.output
    assert "purged 1 " in result.output
    with app.app_context():
        assert db.session.query(RefreshToken).count() == 1
