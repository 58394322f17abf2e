"""activity_service: Members' activity periods: upload and download."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from activity_service.api import blueprints
from activity_service.models import db
from activity_service.settings import ActivitySettings
from activity_service.times import known_zones
from servicekit import create_app as create_service_app
from servicekit.keys import KeyResolver

NAME = "activity"


def create_app(
    config: Mapping[str, Any] | None = None, *, keys: KeyResolver | None = None
) -> Flask:
    app = create_service_app(
        NAME, __name__, db, blueprints, settings=ActivitySettings, config=config, keys=keys
    )
    known_zones()  # read the zone list once at start, not during the first upload
    return app
