"""A real auth_service app for the tests of the services that ask it about users."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask

import auth_service


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
