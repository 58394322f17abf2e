"""What datapoints_service's domain code works with: its settings and the clients built
once from them (create_app builds one `DatapointsContext` per app)."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask

from datapoints_service.settings import DatapointsSettings
from servicekit.users import UserDirectory

EXTENSION = "datapoints.context"


@dataclass(frozen=True)
class DatapointsContext:
    settings: DatapointsSettings
    # auth_service's user directory, as this service; None without `SERVICE_SECRET`
    # (then the users copy is fed by the lifecycle stream alone, with no backfill).
    directory: UserDirectory | None


def init_context(app: Flask, context: DatapointsContext) -> None:
    app.extensions[EXTENSION] = context


def datapoints_context(app: Flask) -> DatapointsContext:
    """The context `create_app` built for `app`."""
    context = app.extensions.get(EXTENSION)
    if not isinstance(context, DatapointsContext):
        raise RuntimeError("this app is not a datapoints_service app")
    return context
