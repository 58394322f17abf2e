"""The outbox relay: publishes the user events a commit could not publish at once.

`flask --app auth_service relay-user-events` runs until SIGTERM or SIGINT: every
`USER_EVENTS_RELAY_INTERVAL` seconds it publishes whatever the outbox holds
(`outbox.publish_pending`), so events recorded while Redis was down reach the stream
once it is back. Any number of relays may run (one per auth_service replica, or a
single one): the outbox lock lets one publish at a time. `--once` publishes what is
there and exits (non-zero when that failed).
"""

from __future__ import annotations

import logging
import threading

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from auth_service.context import auth_context
from auth_service.outbox import outbox_redis, publish_now
from servicekit.streams import stop_on_signals

log = logging.getLogger(__name__)


def relay(app: Flask, stop: threading.Event, interval: float) -> None:
    """Publish pending events every `interval` seconds until `stop` is set."""
    failing = False
    while not stop.is_set():
        try:
            published = publish_now(app)
        except (RedisError, SQLAlchemyError) as exc:
            if not failing:  # once per outage, not once per second
                log.warning("user events not published, retrying: %s", exc)
            failing = True
        else:
            if failing:
                log.info("user events are published again")
            failing = False
            if published:
                log.info("user events published", extra={"published": published})
        stop.wait(interval)


@click.command("relay-user-events")
@click.option("--once", is_flag=True, help="Publish what the outbox holds, then exit.")
@with_appcontext
def relay_user_events_command(once: bool) -> None:
    """Publish the user events of the outbox to the user lifecycle stream."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if outbox_redis(app) is None:
        raise click.ClickException("REDIS_URL is not set: there is no stream to publish to")
    if once:
        try:
            click.echo(f"published {publish_now(app)} user events")
        except (RedisError, SQLAlchemyError) as exc:
            raise click.ClickException(f"publishing failed: {exc}") from exc
        return
    stop = threading.Event()
    stop_on_signals(stop)
    settings = auth_context(app).settings
    log.info("relaying user events", extra={"stream": settings.user_events_stream})
    relay(app, stop, settings.user_events_relay_interval)
