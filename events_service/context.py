"""What events_service's domain code works with: its settings and the clients built once
from them.

create_app builds one `EventsContext` per app; the api modules hand it (or the parts
they need) to the domain services, which read no configuration themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask

from events_service.settings import EventsSettings
from servicekit.context import attach_context, context_of
from servicekit.users import UserDirectory


@dataclass(frozen=True)
class EventsContext:
    settings: EventsSettings
    # auth_service's user directory, as this service; None without `SERVICE_SECRET`
    # (then every write that names a user answers 503).
    directory: UserDirectory | None


def init_context(app: Flask, context: EventsContext) -> None:
    attach_context(app, context)


def events_context(app: Flask) -> EventsContext:
    """The context `create_app` built for `app`."""
    return context_of(app, EventsContext)
