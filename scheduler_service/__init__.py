"""scheduler_service: Outbound HTTP calls scheduled at given timestamps, run by an RQ worker."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from scheduler_service.admin import admin_blueprints
from scheduler_service.api import blueprints, register_domain_errors
from scheduler_service.models import db
from servicekit import create_app as create_service_app
from servicekit.config import REPO_ROOT, env, env_float, env_int, load_environment
from servicekit.keys import KeyResolver

NAME = "scheduler"
DEFAULT_URL = "https://ifconfig.co"


def settings() -> dict[str, Any]:
    """scheduler_service's own settings from the environment (servicekit adds the shared ones)."""
    load_environment()
    return {
        "SCHEDULER_DEFAULT_URL": env("SCHEDULER_DEFAULT_URL", DEFAULT_URL),
        "SCHEDULER_ALLOWED_HOSTS": env("SCHEDULER_ALLOWED_HOSTS", ""),
        "SCHEDULER_CALL_LOG": env("SCHEDULER_CALL_LOG", str(REPO_ROOT / "logs" / "api_calls.log")),
        "SCHEDULER_MAX_TIMESTAMPS": env_int("SCHEDULER_MAX_TIMESTAMPS", 10_000),
        "SCHEDULER_MAX_HORIZON": env_float("SCHEDULER_MAX_HORIZON", 365 * 24 * 3600.0),
        "SCHEDULER_MAX_ATTEMPTS": env_int("SCHEDULER_MAX_ATTEMPTS", 5),
        "SCHEDULER_RETRY_BASE": env_float("SCHEDULER_RETRY_BASE", 2.0),
        "SCHEDULER_RETRY_MAX": env_float("SCHEDULER_RETRY_MAX", 300.0),
        "SCHEDULER_RETRY_AFTER_MAX": env_float("SCHEDULER_RETRY_AFTER_MAX", 3600.0),
        "SCHEDULER_CONNECT_TIMEOUT": env_float("SCHEDULER_CONNECT_TIMEOUT", 5.0),
        "SCHEDULER_TIMEOUT": env_float("SCHEDULER_TIMEOUT", 30.0),
        "SCHEDULER_MAX_RESPONSE_BYTES": env_int("SCHEDULER_MAX_RESPONSE_BYTES", 1024 * 1024),
        "SCHEDULER_HANDOFF_LEAD": env_float("SCHEDULER_HANDOFF_LEAD", 10.0),
        "SCHEDULER_RECONCILE_INTERVAL": env_float("SCHEDULER_RECONCILE_INTERVAL", 15.0),
        "SCHEDULER_RECONCILE_WINDOW": env_float("SCHEDULER_RECONCILE_WINDOW", 600.0),
        "SCHEDULER_LEASE_GRACE": env_float("SCHEDULER_LEASE_GRACE", 30.0),
        "SCHEDULER_WORKER_THREADS": env_int("SCHEDULER_WORKER_THREADS", 32),
    }


def create_app(
    config: Mapping[str, Any] | None = None, *, keys: KeyResolver | None = None
) -> Flask:
    merged = {**settings(), **(config or {})}
    app = create_service_app(
        NAME,
        __name__,
        db,
        [*blueprints, *admin_blueprints],
        config=merged,
        keys=keys,
        uses_redis=True,
    )
    register_domain_errors(app)
    return app
