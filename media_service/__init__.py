"""media_service: Per-user images and the file store of the suite."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import click
from flask import Flask
from flask.cli import with_appcontext
from werkzeug.exceptions import RequestEntityTooLarge

from media_service import api, service
from media_service.models import db
from media_service.settings import MediaSettings
from servicekit import create_app as create_service_app
from servicekit.keys import KeyResolver
from servicekit.settings import app_settings

NAME = "media"


def create_app(
    config: Mapping[str, Any] | None = None, *, keys: KeyResolver | None = None
) -> Flask:
    app = create_service_app(
        NAME, __name__, db, api.blueprints, settings=MediaSettings, config=config, keys=keys
    )
    app.register_error_handler(RequestEntityTooLarge, api.body_too_large)
    with app.app_context():
        warn_about_urls(app, app_settings(MediaSettings))
    app.cli.add_command(sweep)
    return app


def warn_about_urls(app: Flask, settings: MediaSettings) -> None:
    if settings.url_secret is None:
        app.logger.warning("MEDIA_URL_SECRET is not set: image URLs cannot be signed")
    if settings.public_url is None and not settings.allowed_hosts:
        app.logger.warning(
            "neither MEDIA_PUBLIC_URL nor MEDIA_ALLOWED_HOSTS is set: image URLs cannot be built"
        )


@click.command("sweep")
@click.option(
    "--grace-minutes",
    default=60,
    show_default=True,
    type=click.IntRange(min=0),
    help="Leave newer files alone.",
)
@with_appcontext
def sweep(grace_minutes: int) -> None:
    """Remove stored files no image or file record refers to (left by a crash)."""
    removed = service.sweep_orphans(api.storage(), timedelta(minutes=grace_minutes))
    click.echo(f"removed {removed} orphaned file(s)")
