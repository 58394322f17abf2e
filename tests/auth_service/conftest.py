"""Fixtures for auth_service's tests: the app on a fresh database, users, tokens, keys."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import jwt
import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

import auth_service
import media_service
from auth_service import service
from auth_service.context import auth_context
from auth_service.keys import KeyRing
from auth_service.models import db
from servicekit.keys import KeyResolver
from servicekit.testing import ServiceUnderTest, serve_wsgi
from tests.auth_service.auth_helpers import SERVICE_SECRET
from tests.auth_service.auth_media import MediaRecorder, MediaServer, closed_port_url

PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def keys_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every auth app of a test, the migrating one too, keeps its keys in the test's folder."""
    directory = tmp_path / "keys"
    monkeypatch.setenv("JWT_KEYS_DIR", str(directory))
    return directory


@pytest.fixture
def serve_media(
    service_app: Callable[..., Flask], keys_dir: Path, tmp_path: Path
) -> Iterator[Callable[..., MediaServer]]:
    """`serve_media(**config)`: a real media_service on loopback, on its own database,
    trusting the tokens of this test's auth apps (their key folder), or those of `keys`.
    One per test: a second would share its database."""
    served: list[MediaServer] = []

    with ExitStack() as stack:

        def serve(*, keys: KeyResolver | None = None, **config: Any) -> MediaServer:
            assert not served, "one media_service per test"
            storage_dir = tmp_path / "media"
            settings = {"MEDIA_STORAGE_DIR": str(storage_dir), "MEDIA_URL_SECRET": "test", **config}
            if keys is None:
                keys = KeyRing.from_directory(keys_dir)  # makes the key the auth apps use
            app = service_app("media", media_service.create_app, keys=keys, **settings)
            recorder = MediaRecorder(app)
            url = stack.enter_context(serve_wsgi(recorder))
            served.append(MediaServer(url, app, storage_dir, recorder))
            return served[0]

        yield serve


@pytest.fixture
def media(serve_media: Callable[..., MediaServer]) -> MediaServer:
    """The media_service of this test; the auth apps of a test asking for it use it."""
    return serve_media()


@pytest.fixture
def service_under_test(
    keys_dir: Path, request: pytest.FixtureRequest, redis_client: redis.Redis
) -> ServiceUnderTest:
    """auth apps with cheap password hashing, keys and mail in the test's folder, and a
    flushed Redis (revocation marks, throttles).

    They store pictures in the test's `media` when the test asks for that fixture; else
    their media_service is a closed port, never a media_service running on this machine.
    """
    settings = {
        "JWT_KEYS_DIR": str(keys_dir),
        "PASSWORD_HASH_TIME_COST": 1,
        "PASSWORD_HASH_MEMORY_KIB": 1024,
        "SERVICE_SECRET": SERVICE_SECRET,
        "MAIL_OUTBOX_DIR": str(keys_dir.parent / "outbox"),
        "MEDIA_SERVICE_URL": media_url(request),
    }
    return ServiceUnderTest("auth", auth_service.create_app, settings)


def media_url(request: pytest.FixtureRequest) -> str:
    if "media" in request.fixturenames:
        return str(request.getfixturevalue("media").url)
    return closed_port_url()


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
            user = service.create_user(
                auth_context(app), username=username, password=password, role=role, **profile
            )
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
