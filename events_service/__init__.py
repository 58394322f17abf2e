"""events_service: categories, tags, events, photos, teams, invitations, registrations,
organisers and volunteers of the college fest (the document's fest sections)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from events_service.api import blueprints
from events_service.context import EventsContext, init_context
from events_service.models import db
from events_service.settings import EventsSettings
from servicekit import create_app as create_service_app
from servicekit.keys import KeyResolver
from servicekit.settings import app_settings
from servicekit.users import optional_user_directory

NAME = "events"


def create_app(
    config: Mapping[str, Any] | None = None, *, keys: KeyResolver | None = None
) -> Flask:
    app = create_service_app(
        NAME,
        __name__,
        db,
        blueprints,
        settings=EventsSettings,
        config=config,
        keys=keys,
        uses_redis=False,
    )
    with app.app_context():
        init_context(
            app,
            EventsContext(
                app_settings(EventsSettings),
                optional_user_directory(app, "writes that name users answer 503"),
            ),
        )
    return app
