"""auth_service's commands: `flask --app auth_service <command>`.

- `create-admin`: the superuser `ADMIN_USERNAME` (default "admin") with `ADMIN_PASSWORD`,
  unless that user exists; what the dev stack and the containers run before starting.
- `create-superuser --username X`: a superuser, the password typed at a prompt.
- `grant-staff X --privilege event:crud ...` / `revoke-staff X`: staff management (the
  user's tokens are revoked; the new role comes with their next login).
- `rotate-signing-key [--drop-older-than SECONDS]`: a new signing key in `JWT_KEYS_DIR`,
  and optionally the removal of keys retired long enough ago (see keys.py).
- `add-signing-key`: a new signing key only (what `rotate-signing-key` does first).
  Both refuse when `JWT_GENERATE_KEYS` is false (the keys directory is a read-only
  secret: rotate by adding the next `key-00000N.pem` to the secret) or the directory
  cannot be written.
- `purge-expired-tokens`: forget the records of tokens that can no longer be used.
- `relay-user-events [--once]`: publish the user lifecycle events left in the outbox
  (relay.py).
"""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy import delete

from auth_service.context import AuthContext, auth_context
from auth_service.errors import RevocationUnavailable
from auth_service.keys import (
    KeysDirectoryNotWritable,
    SigningKey,
    add_signing_key,
    drop_retired_keys,
)
from auth_service.models import ApiToken, PasswordResetToken, RefreshToken, changed_rows, db
from auth_service.relay import relay_user_events_command
from auth_service.schemas import MODEL_NAME_PATTERN
from auth_service.service import apply_role, ensure_admin, find_user
from servicekit.config import env
from servicekit.db import utcnow
from servicekit.identity import ACTIONS


def context() -> AuthContext:
    return auth_context(current_app)


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


@click.command("grant-staff")
@click.argument("username")
@click.option(
    "--privilege",
    "privileges",
    multiple=True,
    metavar="MODEL:LETTERS",
    help="A privilege as model and action letters (c, r, u, d), e.g. event:crud; repeatable.",
)
@with_appcontext
def grant_staff_command(username: str, privileges: tuple[str, ...]) -> None:
    """Make USERNAME staff with these privileges (replacing their earlier ones)."""
    _set_role(username, "staff", dict(_parse_privilege(text) for text in privileges))
    click.echo(f"{username!r} is staff: {', '.join(privileges) or 'no privileges'}")


@click.command("revoke-staff")
@click.argument("username")
@with_appcontext
def revoke_staff_command(username: str) -> None:
    """Make USERNAME a normal user again."""
    _set_role(username, "normal", {})
    click.echo(f"{username!r} is a normal user")


def _parse_privilege(text: str) -> tuple[str, list[str]]:
    model, _, letters = text.partition(":")
    if not MODEL_NAME_PATTERN.match(model) or not letters or set(letters) - set(ACTIONS):
        raise click.BadParameter(f"{text!r}: expected MODEL:LETTERS with letters from crud")
    return model, [ACTIONS[letter] for letter in letters]


def _set_role(username: str, role: str, privileges: dict[str, list[str]]) -> None:
    user = find_user(username)
    if user is None:
        raise click.ClickException(f"no user {username!r}")
    try:
        apply_role(context(), user, role, privileges)
    except RevocationUnavailable as exc:
        raise click.ClickException("Redis (REDIS_URL) is unavailable: nothing changed") from exc
    db.session.commit()


@click.command("add-signing-key")
@with_appcontext
def add_signing_key_command() -> None:
    """Add a signing key to JWT_KEYS_DIR: published at once, signing after a restart."""
    click.echo(_add_key())


@click.command("rotate-signing-key")
@click.option(
    "--drop-older-than",
    type=click.IntRange(min=0),
    default=None,
    metavar="SECONDS",
    help="Also delete keys retired at least this long ago (at least the longest token "
    "lifetime: JWT_REFRESH_TTL, API_TOKEN_TTL).",
)
@click.option("--force", is_flag=True, help="Allow --drop-older-than below that lifetime.")
@with_appcontext
def rotate_signing_key_command(drop_older_than: int | None, force: bool) -> None:
    """Add a signing key (restart auth_service to sign with it); old keys stay published,
    so their tokens keep verifying, until --drop-older-than removes them."""
    click.echo(f"added {_add_key()}")
    if drop_older_than is None:
        return
    longest = context().tokens.longest_ttl
    if drop_older_than < longest and not force:
        raise click.ClickException(
            f"--drop-older-than {drop_older_than} is shorter than the longest token lifetime "
            f"({longest} s): tokens still in use would stop verifying (--force to insist)"
        )
    for path in drop_retired_keys(context().settings.keys_dir, drop_older_than):
        click.echo(f"dropped {path}")


def _add_key() -> str:
    settings = context().settings
    if settings.private_key_file is not None:
        raise click.ClickException("JWT_PRIVATE_KEY_FILE is set: that one file is the only key")
    if not settings.generate_keys:
        raise click.ClickException(
            f"JWT_GENERATE_KEYS is false: JWT_KEYS_DIR={settings.keys_dir} is only read; "
            "rotate by adding the next key-NNNNNN.pem to the secret mounted there"
        )
    try:
        path = add_signing_key(settings.keys_dir)
    except KeysDirectoryNotWritable as exc:
        raise click.ClickException(str(exc)) from None
    return f"{path} kid={SigningKey.load(path).kid}"


@click.command("purge-expired-tokens")
@with_appcontext
def purge_expired_tokens_command() -> None:
    """Delete the records of expired refresh, API and password reset tokens."""
    now = utcnow()
    purged = 0
    for model in (RefreshToken, ApiToken, PasswordResetToken):
        purged += changed_rows(delete(model).where(model.expires_at < now))
    db.session.commit()
    click.echo(f"purged {purged} expired token records")


def _ensure_admin(username: str, password: str, email: str | None) -> bool:
    try:
        return ensure_admin(context(), username, password, email=email)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc


def register_commands(app: Flask) -> None:
    for command in (
        create_admin_command,
        create_superuser_command,
        grant_staff_command,
        revoke_staff_command,
        add_signing_key_command,
        rotate_signing_key_command,
        purge_expired_tokens_command,
        relay_user_events_command,
    ):
        app.cli.add_command(command)
