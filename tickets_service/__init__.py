"""tickets_service: Support tickets of the college fest platform."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from servicekit import create_app as create_service_app
from servicekit.keys import KeyResolver
from tickets_service.api import blueprints
from tickets_service.models import db

NAME = "tickets"


def create_app(
    config: Mapping[str, Any] | None = None, *, keys: KeyResolver | None = None
) -> Flask:
    return create_service_app(
        NAME, __name__, db, blueprints, config=config, keys=keys, uses_redis=False
    )
