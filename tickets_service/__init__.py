"""tickets_service: the fest's help desk. Participants open tickets (public: everyone reads
them and their answers; private: only they and staff do), talk them through with staff in
a thread, and staff close them with a solution (the document's Tickets section)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from servicekit import create_app as create_service_app
from servicekit import redis_client
from servicekit.config import redis_url
from servicekit.keys import KeyResolver
from servicekit.settings import app_settings
from servicekit.users import optional_user_directory
from tickets_service.api import blueprints
from tickets_service.cli import register_commands
from tickets_service.context import TicketsContext, init_context
from tickets_service.models import db
from tickets_service.settings import TicketsSettings

NAME = "tickets"


def create_app(
    config: Mapping[str, Any] | None = None, *, keys: KeyResolver | None = None
) -> Flask:
    app = create_service_app(
        NAME,
        __name__,
        db,
        blueprints,
        settings=TicketsSettings,
        config=config,
        keys=keys,
        uses_redis=bool(_redis_url(config)),
    )
    with app.app_context():
        redis = redis_client() if app.config.get("REDIS_URL") else None
        init_context(
            app,
            TicketsContext(
                app_settings(TicketsSettings),
                redis,
                optional_user_directory(app, "renames are taken from the stream as is"),
            ),
        )
    register_commands(app)
    return app


def _redis_url(config: Mapping[str, Any] | None) -> str | None:
    """Redis holds the abuse counters and the mail queue, when there is one."""
    if config is not None and "REDIS_URL" in config:
        return config["REDIS_URL"]  # type: ignore[no-any-return]
    return redis_url()
