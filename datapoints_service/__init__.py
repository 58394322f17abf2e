"""datapoints_service: health-campaign data (the v2 data API: offices, regions,
campaigns, indicators, their maps, groups and permissions, dashboards, documents, users)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from datapoints_service import api, datapoint_api, entry_api, geo_api, map_page
from datapoints_service.cli import register_commands
from datapoints_service.context import DatapointsContext, init_context
from datapoints_service.documents import api as documents_api
from datapoints_service.models import db
from datapoints_service.settings import DatapointsSettings
from servicekit import create_app as create_service_app
from servicekit.keys import KeyResolver
from servicekit.settings import app_settings
from servicekit.users import optional_user_directory

NAME = "datapoints"
# The documents' routes come before the generic /api/v2/<resource>/ ones they refine.
blueprints = [
    documents_api.blp,
    api.blp,
    datapoint_api.blp,
    entry_api.blp,
    geo_api.blp,
    map_page.blp,
]


def create_app(
    config: Mapping[str, Any] | None = None, *, keys: KeyResolver | None = None
) -> Flask:
    app = create_service_app(
        NAME,
        __name__,
        db,
        blueprints,
        settings=DatapointsSettings,
        config=config,
        keys=keys,
        uses_redis=True,  # documents are queued for the RQ worker
    )
    with app.app_context():
        settings = app_settings(DatapointsSettings)
        init_context(
            app,
            DatapointsContext(
                settings, optional_user_directory(app, "the users copy holds only what events say")
            ),
        )
    register_commands(app)
    return app
