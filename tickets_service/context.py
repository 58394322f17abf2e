"""What tickets_service's domain code works with: its settings and the clients built once
from them.

create_app builds one `TicketsContext` per app; api.py hands it (or the parts needed) to
service.py, which reads no configuration itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask
from redis import Redis

from servicekit.context import attach_context, context_of
from servicekit.users import UserDirectory
from tickets_service.limits import HourlyLimit
from tickets_service.settings import TicketsSettings


@dataclass(frozen=True)
class TicketsContext:
    settings: TicketsSettings
    # The suite's Redis: abuse counters and the mail queue. None without `REDIS_URL`:
    # then nothing is limited and no mail is sent.
    redis: Redis | None
    # auth_service's user directory (renames handled late ask it for the current name);
    # None without `SERVICE_SECRET`.
    directory: UserDirectory | None

    def ticket_limit(self) -> HourlyLimit:
        return HourlyLimit("tickets", self.settings.tickets_per_hour, self.redis)

    def comment_limit(self) -> HourlyLimit:
        return HourlyLimit("comments", self.settings.comments_per_hour, self.redis)


def init_context(app: Flask, context: TicketsContext) -> None:
    attach_context(app, context)


def tickets_context(app: Flask) -> TicketsContext:
    """The context `create_app` built for `app`."""
    return context_of(app, TicketsContext)
