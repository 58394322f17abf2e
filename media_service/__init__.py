"""media_service: Per-user images and the file store of the suite."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from media_service import service
from media_service.api import RULES, SIGNER, blueprints, register_domain_errors
from media_service.imaging import Limits
from media_service.models import db
from media_service.signing import UrlSigner
from media_service.storage import FileSystemStorage
from servicekit import create_app as create_service_app
from servicekit.config import env, env_int, load_environment, var_dir
from servicekit.keys import KeyResolver

NAME = "media"
MIB = 1024 * 1024
# Room for the multipart framing and form fields around the file itself.
FORM_OVERHEAD = 64 * 1024


def settings() -> dict[str, Any]:
    """media_service's own settings from the environment (servicekit adds the shared ones)."""
    load_environment()
    return {
        "MEDIA_STORAGE_DIR": env("MEDIA_STORAGE_DIR", str(var_dir() / "media")),
        "MEDIA_URL_SECRET": env("MEDIA_URL_SECRET"),
        "MEDIA_URL_TTL": env_int("MEDIA_URL_TTL", 3600),
        "MEDIA_URL_WINDOW": env_int("MEDIA_URL_WINDOW", 600),
        "MEDIA_PUBLIC_URL": env("MEDIA_PUBLIC_URL"),
        "MEDIA_MAX_BYTES": env_int("MEDIA_MAX_BYTES", 20 * MIB),
        "MEDIA_MAX_PIXELS": env_int("MEDIA_MAX_PIXELS", 40_000_000),
        "MEDIA_MAX_FRAMES": env_int("MEDIA_MAX_FRAMES", 300),
        "MEDIA_THUMBNAIL_SIZE": env_int("MEDIA_THUMBNAIL_SIZE", 256),
        "MEDIA_QUOTA_BYTES": env_int("MEDIA_QUOTA_BYTES", 500 * MIB),
        "MEDIA_QUOTA_IMAGES": env_int("MEDIA_QUOTA_IMAGES", 1000),
    }


POSITIVE_SETTINGS = (
    "MEDIA_URL_TTL",
    "MEDIA_URL_WINDOW",
    "MEDIA_MAX_BYTES",
    "MEDIA_MAX_PIXELS",
    "MEDIA_MAX_FRAMES",
    "MEDIA_THUMBNAIL_SIZE",
    "MEDIA_QUOTA_BYTES",
    "MEDIA_QUOTA_IMAGES",
)


def checked_settings(config: Mapping[str, Any]) -> None:
    """Refuse to start with a limit that would make every request fail."""
    wrong = [name for name in POSITIVE_SETTINGS if not int(config[name]) > 0]
    if wrong:
        raise RuntimeError(f"must be positive integers: {', '.join(wrong)}")


def create_app(
    config: Mapping[str, Any] | None = None, *, keys: KeyResolver | None = None
) -> Flask:
    merged = {**settings(), **(config or {})}
    checked_settings(merged)
    merged["MAX_CONTENT_LENGTH"] = merged["MEDIA_MAX_BYTES"] + FORM_OVERHEAD
    app = create_service_app(
        NAME, __name__, db, blueprints, config=merged, keys=keys, uses_redis=False
    )
    app.extensions[RULES] = rules_from(app.config)
    secret = app.config.get("MEDIA_URL_SECRET")
    if secret:
        app.extensions[SIGNER] = UrlSigner(
            secret.encode(), app.config["MEDIA_URL_TTL"], app.config["MEDIA_URL_WINDOW"]
        )
    else:
        app.logger.warning("MEDIA_URL_SECRET is not set: image URLs cannot be signed")
    register_domain_errors(app)
    app.cli.add_command(sweep)
    return app


def rules_from(config: Mapping[str, Any]) -> service.Rules:
    return service.Rules(
        storage=FileSystemStorage(Path(config["MEDIA_STORAGE_DIR"])),
        limits=Limits(
            max_pixels=config["MEDIA_MAX_PIXELS"],
            max_frames=config["MEDIA_MAX_FRAMES"],
            thumbnail_size=config["MEDIA_THUMBNAIL_SIZE"],
        ),
        max_bytes=config["MEDIA_MAX_BYTES"],
        quota=service.Quota(config["MEDIA_QUOTA_BYTES"], config["MEDIA_QUOTA_IMAGES"]),
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
    removed = service.sweep_orphans(
        current_app.extensions[RULES].storage, timedelta(minutes=grace_minutes)
    )
    click.echo(f"removed {removed} orphaned file(s)")
