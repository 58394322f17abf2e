"""What datapoints_service's domain code works with: its settings and the clients built
once from them (create_app builds one `DatapointsContext` per app)."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask

from datapoints_service.settings import DatapointsSettings
from servicekit.context import attach_context, context_of
from servicekit.users import UserDirectory


@dataclass(frozen=True)
class DatapointsContext:
    settings: DatapointsSettings
    # auth_service's user directory, as this service; None without `SERVICE_SECRET`
    # (then the users copy holds only what the lifecycle events themselves say).
    directory: UserDirectory | None


def init_context(app: Flask, context: DatapointsContext) -> None:
    attach_context(app, context)


def datapoints_context(app: Flask) -> DatapointsContext:
    """The context `create_app` built for `app`."""
    return context_of(app, DatapointsContext)
