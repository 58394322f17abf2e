"""A real auth_service for the tests of the services that ask it about users: the app on
its own database, served on loopback, and users known to it with tokens the service
under test accepts."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask

import auth_service
from auth_service import service
from auth_service.context import auth_context
from devstack.redis_server import free_port
from servicekit import Identity
from servicekit.testing import TestKeys, serve_wsgi

COLLEGE = "College of Engineering"  # every test user's, unless a test says otherwise
ROOT = Identity(subject="root-public-id", username="root", role="superuser")


def auth_app(
    service_app: Callable[..., Flask],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    service_secret: str,
    media_url: str,
) -> Flask:
    """auth_service on its own migrated database, its keys and mail in the test's folder,
    trusting `service_secret` for service tokens; its pictures go to `media_url`."""
    keys = tmp_path / "keys"
    monkeypatch.setenv("JWT_KEYS_DIR", str(keys))  # the migrating app's keys too
    return service_app(
        "auth",
        auth_service.create_app,
        JWT_KEYS_DIR=str(keys),
        SERVICE_SECRET=service_secret,
        MEDIA_SERVICE_URL=media_url,
        MAIL_OUTBOX_DIR=str(tmp_path / "mail"),
    )


@dataclass(frozen=True)
class User:
    """A user of the test: known to auth_service, with a token signed by the test keys."""

    public_id: str
    username: str
    headers: dict[str, str]


@dataclass
class AuthServer:
    """A real auth_service on loopback: the user directory the service under test asks."""

    app: Flask
    url: str
    keys: TestKeys

    def add_user(
        self,
        username: str,
        *,
        college: str = COLLEGE,
        role: str = "normal",
        priv: dict[str, str] | None = None,
        **profile: Any,
    ) -> User:
        profile.setdefault("email", f"{username}@example.org")
        with self.app.app_context():
            user = service.create_user(
                auth_context(self.app),
                username=username,
                password=None,
                role=role,
                college_name=college,
                **profile,
            )
            public_id = str(user.public_id)
        token = self.keys.token(sub=public_id, username=username, role=role, priv=priv)
        return User(public_id, username, {"Authorization": f"Bearer {token}"})

    def change_profile(self, name: str, **changes: Any) -> None:
        """Change the profile fields of user `name` (`username=` renames them)."""
        with self.app.app_context():
            service.update_profile(auth_context(self.app), name, ROOT, changes)

    def disable(self, username: str) -> None:
        with self.app.app_context():
            service.set_active(auth_context(self.app), username, ROOT, False)

    def delete(self, username: str) -> None:
        with self.app.app_context():
            service.delete_user(auth_context(self.app), username, ROOT)


@contextmanager
def auth_server(app: Flask, keys: TestKeys) -> Iterator[AuthServer]:
    with serve_wsgi(app) as url:
        yield AuthServer(app, url, keys)


def auth_fixture(service_secret: str) -> Callable[..., Iterator[AuthServer]]:
    """The `auth` fixture of a test package: `auth = auth_fixture(SERVICE_SECRET)` in its
    conftest. auth_service's own pictures go nowhere (a closed loopback port)."""

    @pytest.fixture
    def auth(
        service_app: Callable[..., Flask],
        test_keys: TestKeys,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        redis_client: redis.Redis,
    ) -> Iterator[AuthServer]:
        """A real auth_service served on loopback, on its own migrated database (and a
        flushed Redis: its lifecycle stream starts empty)."""
        closed_port = f"http://127.0.0.1:{free_port()}"
        app = auth_app(
            service_app,
            tmp_path,
            monkeypatch,
            service_secret=service_secret,
            media_url=closed_port,
        )
        with auth_server(app, test_keys) as server:
            yield server

    return auth
