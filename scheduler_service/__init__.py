"""scheduler_service: Outbound HTTP calls scheduled at given timestamps, run by an RQ worker."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from scheduler_service.admin import admin_blueprints
from scheduler_service.api import blueprints
from scheduler_service.models import db
from scheduler_service.settings import SchedulerSettings
from servicekit import create_app as create_service_app
from servicekit.keys import KeyResolver

NAME = "scheduler"


def create_app(
    config: Mapping[str, Any] | None = None, *, keys: KeyResolver | None = None
) -> Flask:
    return create_service_app(
        NAME,
        __name__,
        db,
        [*blueprints, *admin_blueprints],
        settings=SchedulerSettings,
        config=config,
        keys=keys,
        uses_redis=True,
    )
