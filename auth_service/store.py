"""The Redis auth_service shares with the gateway: revocation marks and login throttling."""

from __future__ import annotations

from flask import current_app
from redis import Redis

from servicekit.app import redis_client


def redis_store() -> Redis | None:
    """This app's Redis, or None when no `REDIS_URL` is configured (nothing to share)."""
    if not current_app.config.get("REDIS_URL"):
        return None
    return redis_client()
