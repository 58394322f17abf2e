"""activity_service: Members' activity periods: upload and download."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from activity_service.api import blueprints, register_domain_errors
from activity_service.models import db
from activity_service.times import known_zones
from servicekit import create_app as create_service_app
from servicekit.config import env_int, load_environment
from servicekit.keys import KeyResolver

NAME = "activity"
MIB = 1024 * 1024


def settings() -> dict[str, Any]:
    """activity_service's own settings from the environment (servicekit adds the shared ones)."""
    load_environment()
    return {
        # The upload's body limit (413 beyond); the gateway's route limit is above it.
        "MAX_CONTENT_LENGTH": env_int("ACTIVITY_MAX_BODY", 50 * MIB),
        "ACTIVITY_MAX_MEMBERS": env_int("ACTIVITY_MAX_MEMBERS", 10_000),
        "ACTIVITY_MAX_PERIODS": env_int("ACTIVITY_MAX_PERIODS", 200_000),
        "ACTIVITY_MAX_PERIOD_SECONDS": env_int("ACTIVITY_MAX_PERIOD_SECONDS", 7 * 24 * 3600),
        "ACTIVITY_MAX_PAGE_SIZE": env_int("ACTIVITY_MAX_PAGE_SIZE", 1000),
        "ACTIVITY_MAX_MEMBER_FILTERS": env_int("ACTIVITY_MAX_MEMBER_FILTERS", 200),
    }


def create_app(
    config: Mapping[str, Any] | None = None, *, keys: KeyResolver | None = None
) -> Flask:
    merged = {**settings(), **(config or {})}
    app = create_service_app(
        NAME, __name__, db, blueprints, config=merged, keys=keys, uses_redis=False
    )
    register_domain_errors(app)
    known_zones()  # read the zone list once at start, not during the first upload
    return app
