"""servicekit: the small library every Flotilla service is built from (no business logic)."""

from servicekit.app import Blueprint, create_app, redis_client
from servicekit.db import make_db
from servicekit.errors import ApiError
from servicekit.identity import (
    Identity,
    current_identity,
    require_identity,
    require_privilege,
    require_service,
    require_staff,
)

__all__ = [
    "ApiError",
    "Blueprint",
    "Identity",
    "create_app",
    "current_identity",
    "make_db",
    "redis_client",
    "require_identity",
    "require_privilege",
    "require_service",
    "require_staff",
]
