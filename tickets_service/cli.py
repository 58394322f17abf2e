"""tickets_service's commands: `flask --app tickets_service <command>`."""

from __future__ import annotations

import threading

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from servicekit.redis_connection import redis_from_url
from servicekit.streams import ConsumerOptions, StreamConsumer, StreamEntry, stop_on_signals
from servicekit.users import user_stream
from tickets_service.lifecycle import GROUP, handle_entry


def consumer(app: Flask, options: ConsumerOptions) -> StreamConsumer:
    """This app's consumer of the user lifecycle stream (group `tickets`). Its Redis
    connection waits longer than a blocking read (the app's own one does not)."""
    url = app.config.get("REDIS_URL")
    if not url:
        raise click.ClickException("REDIS_URL is not set: the user lifecycle stream is in Redis")
    redis = redis_from_url(url, socket_timeout=options.block + 5, socket_connect_timeout=5)

    def handle(entry: StreamEntry) -> None:
        with app.app_context():
            handle_entry(entry)

    return StreamConsumer(redis, user_stream(), GROUP, handle, options=options)


@click.command("consume-user-events")
@click.option("--once", is_flag=True, help="Handle what the stream holds now, then stop.")
@click.option("--block", default=2.0, show_default=True, help="Seconds a read waits for entries.")
@with_appcontext
def consume_user_events_command(once: bool, block: float) -> None:
    """Follow the user lifecycle stream until SIGTERM or SIGINT (deleted users' private
    tickets go, renamed users' names follow)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    stream_consumer = consumer(app, ConsumerOptions(block=block))
    if once:
        stream_consumer.ensure_group()
        handled = stream_consumer.poll()
        click.echo(f"{handled} entries handled")
        return
    stop = threading.Event()
    stop_on_signals(stop)
    stream_consumer.run(stop)


def register_commands(app: Flask) -> None:
    app.cli.add_command(consume_user_events_command)
