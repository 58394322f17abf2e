"""Fixtures for auth_service's tests: the app on a fresh database, users, tokens, keys."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
from flask import Flask
from flask.testing import FlaskClient

import auth_service
from auth_service import service
from auth_service.models import db

SERVICE_SECRET = "test-secret"
PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def keys_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every auth app of a test, the migrating one too, keeps its keys in the test's folder."""
    directory = tmp_path / "keys"
    monkeypatch.setenv("JWT_KEYS_DIR", str(directory))
    return directory


@pytest.fixture
def make_app(service_app: Callable[..., Flask], keys_dir: Path) -> Callable[..., Flask]:
    """Build auth apps on this test's database (cheap password hashing)."""

    def make(**config: Any) -> Flask:
        settings = {
            "JWT_KEYS_DIR": str(keys_dir),
            "PASSWORD_HASH_TIME_COST": 1,
            "PASSWORD_HASH_MEMORY_KIB": 1024,
            "SERVICE_SECRET": SERVICE_SECRET,
            "MAIL_OUTBOX_DIR": str(keys_dir.parent / "outbox"),
            "PROFILE_PICTURE_DIR": str(keys_dir.parent / "pictures"),
            **config,
        }
        return service_app("auth", auth_service.create_app, **settings)

    return make


@pytest.fixture
def app(make_app: Callable[..., Flask], redis_client: Any) -> Flask:
    """The app on a fresh database, with a flushed Redis (revocation marks, throttles)."""
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def seed_registration(**overrides: Any) -> dict[str, Any]:
    """The seed's "Create New User" body; an override of None drops that key."""
    body: dict[str, Any] = {
        "username": "test_user_001",
        "firstName": "Test",
        "lastName": "User",
        "email": "test_user_001@testers.techfesia.iiits.in",
        "password": PASSWORD,
        "phoneNumber": "+911234567890",
        "collegeName": "Test College 123",
        "profilePicture": "url_to_profile_pic",
    }
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not None}


@pytest.fixture
def registration() -> Callable[..., dict[str, Any]]:
    return seed_registration


@pytest.fixture
def register(client: FlaskClient) -> Callable[..., dict[str, Any]]:
    """Register a user through the API; returns the 201 body."""

    def make(**overrides: Any) -> dict[str, Any]:
        response = client.post("/users/", json=seed_registration(**overrides))
        assert response.status_code == 201, response.get_json()
        return dict(response.get_json())

    return make


@pytest.fixture
def login(client: FlaskClient) -> Callable[..., dict[str, str]]:
    """Obtain a token pair; returns {"access", "refresh"}."""

    def make(username: str = "test_user_001", password: str = PASSWORD) -> dict[str, str]:
        response = client.post("/auth/token/", json={"username": username, "password": password})
        assert response.status_code == 200, response.get_json()
        return dict(response.get_json())

    return make


@pytest.fixture
def decode(client: FlaskClient) -> Callable[[str], dict[str, Any]]:
    """Verify a token against the published JWKS, as another service would."""

    def verify(token: str) -> dict[str, Any]:
        jwks = client.get("/.well-known/jwks.json").get_json()
        kid = jwt.get_unverified_header(token)["kid"]
        entry = next(key for key in jwks["keys"] if key["kid"] == kid)
        return jwt.decode(
            token,
            jwt.PyJWK(entry).key,
            algorithms=["RS256"],
            audience="flotilla",
            issuer="flotilla",
        )

    return verify


@pytest.fixture
def outbox(keys_dir: Path) -> Path:
    return keys_dir.parent / "outbox"


@pytest.fixture
def pictures_dir(keys_dir: Path) -> Path:
    return keys_dir.parent / "pictures"


@pytest.fixture
def add_user(app: Flask) -> Callable[..., str]:
    """Create a user straight in the database; returns their public id."""

    def make(
        username: str,
        *,
        role: str = "normal",
        privileges: dict[str, list[str]] | None = None,
        password: str | None = PASSWORD,
        **profile: Any,
    ) -> str:
        profile.setdefault("email", f"{username}@example.org")
        with app.app_context():
            user = service.create_user(username=username, password=password, role=role, **profile)
            if privileges is not None:
                user.privileges = privileges
                db.session.commit()
            return str(user.public_id)

    return make


@pytest.fixture
def token_for(client: FlaskClient) -> Callable[..., str]:
    """Log a user in; returns the access token."""

    def make(username: str, password: str = PASSWORD) -> str:
        response = client.post("/auth/token/", json={"username": username, "password": password})
        assert response.status_code == 200, response.get_json()
        return str(response.get_json()["access"])

    return make


@pytest.fixture
def staff_token(add_user: Callable[..., str], token_for: Callable[..., str]) -> Callable[..., str]:
    """`staff_token(user=["read", "update"])`: a new staff member's access token; with
    `role="superuser"`, a superuser's."""
    made: list[str] = []

    def make(role: str = "staff", **privileges: list[str]) -> str:
        username = f"{role}_{len(made) + 1}"
        made.append(username)
        add_user(username, role=role, privileges=privileges if role == "staff" else None)
        return token_for(username)

    return make
