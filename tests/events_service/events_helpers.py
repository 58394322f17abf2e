"""Helpers for events_service's tests: users known to a real auth_service, and their tokens."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from flask import Flask

from auth_service import service
from auth_service.context import auth_context
from servicekit import Identity
from servicekit.testing import TestKeys, serve_wsgi

SERVICE_SECRET = "events-test-secret"
COLLEGE = "College of Engineering"
OTHER_COLLEGE = "Institute of Design"
# What staff are given in these tests unless a test says otherwise.
EVENT_PRIVILEGES = {"event": "crud"}
ROOT = Identity(subject="root-public-id", username="root", role="superuser")


@dataclass(frozen=True)
class User:
    """A user of the test: known to auth_service, with a token events_service accepts."""

    public_id: str
    username: str
    headers: dict[str, str]


@dataclass
class AuthServer:
    """A real auth_service on loopback: the user directory events_service asks."""

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
