"""auth_service's commands: `flask --app auth_service <command>`.

- `create-admin`: the superuser `ADMIN_USERNAME` (default "admin") with `ADMIN_PASSWORD`,
  unless that user exists; what the dev stack and the containers run before starting.
- `create-superuser --username X`: a superuser, the password typed at a prompt.
- `add-signing-key`: a new signing key in `JWT_KEYS_DIR` (key rotation, see keys.py).
"""

from __future__ import annotations

from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from auth_service.keys import SigningKey, add_signing_key
from auth_service.service import ensure_admin
from servicekit.config import env


@click.command("create-admin")
@with_appcontext
def create_admin_command() -> None:
    """Create the admin superuser from ADMIN_USERNAME / ADMIN_PASSWORD if it is missing."""
    username = env("ADMIN_USERNAME", "admin") or "admin"
    password = env("ADMIN_PASSWORD")
    if not password:
        raise click.ClickException("ADMIN_PASSWORD is not set: it is the admin account's password")
    created = _ensure_admin(username, password, env("ADMIN_EMAIL"))
    click.echo(f"admin {username!r} " + ("created" if created else "exists already"))


@click.command("create-superuser")
@click.option("--username", required=True, help="The new superuser's username.")
@click.option("--email", default=None, help="Their email address (optional).")
@click.password_option(help="Their password (prompted for when not given).")
@with_appcontext
def create_superuser_command(username: str, email: str | None, password: str) -> None:
    """Create a superuser; fails if the username is taken."""
    if not _ensure_admin(username, password, email):
        raise click.ClickException(f"user {username!r} exists already")
    click.echo(f"superuser {username!r} created")


@click.command("add-signing-key")
@with_appcontext
def add_signing_key_command() -> None:
    """Add a signing key to JWT_KEYS_DIR: published at once, signing after a restart."""
    if current_app.config.get("JWT_PRIVATE_KEY_FILE"):
        raise click.ClickException("JWT_PRIVATE_KEY_FILE is set: that one file is the only key")
    path = add_signing_key(Path(current_app.config["JWT_KEYS_DIR"]))
    click.echo(f"{path} kid={SigningKey.load(path).kid}")


def _ensure_admin(username: str, password: str, email: str | None) -> bool:
    try:
        return ensure_admin(username, password, email=email)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc


def register_commands(app: Flask) -> None:
    for command in (create_admin_command, create_superuser_command, add_signing_key_command):
        app.cli.add_command(command)
