"""The admin account: `ensure_admin` and the `create-admin` / `create-superuser` commands."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask

import auth_service
from auth_service.models import User, db
from auth_service.service import ensure_admin

PASSWORD = "admin password 1"


def users(app: Flask) -> list[User]:
    with app.app_context():
        return list(db.session.query(User).order_by(User.id))


def test_ensure_admin_creates_once(app: Flask) -> None:
    with app.app_context():
        assert ensure_admin("admin", PASSWORD) is True
        assert ensure_admin("admin", "another password") is False

    (admin,) = users(app)
    assert (admin.username, admin.role, admin.is_active) == ("admin", "superuser", True)
    response = app.test_client().post(
        "/auth/token/", json={"username": "admin", "password": PASSWORD}
    )
    assert response.status_code == 200


@pytest.mark.parametrize(("username", "password"), [("admin", "short"), ("a b", PASSWORD)])
def test_ensure_admin_refuses_bad_values(app: Flask, username: str, password: str) -> None:
    with app.app_context(), pytest.raises(ValueError):
        ensure_admin(username, password)
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
