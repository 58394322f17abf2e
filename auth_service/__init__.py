"""auth_service: users, passwords and tokens; publishes the token signing keys (JWKS)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from auth_service.api import blueprints, register_domain_errors
from auth_service.cli import register_commands
from auth_service.keys import ChainedKeys, load_keyring
from auth_service.mail import init_mail
from auth_service.models import db
from auth_service.outbox import StreamSettings
from auth_service.passwords import init_passwords
from auth_service.pictures import init_pictures
from auth_service.throttle import parse_limit
from auth_service.tokens import KEYRING
from servicekit import create_app as create_service_app
from servicekit.config import env, env_float, env_int, load_environment, service_url, var_dir
from servicekit.keys import KeyResolver
from servicekit.users import user_stream

NAME = "auth"
MIB = 1024 * 1024
RATE_LIMIT_SETTINGS = (
    "LOGIN_RATE_LIMIT_USERNAME",
    "LOGIN_RATE_LIMIT_ADDRESS",
    "PASSWORD_RESET_RATE_LIMIT_USERNAME",
    "PASSWORD_RESET_RATE_LIMIT_ADDRESS",
)


def settings() -> dict[str, Any]:
    """auth_service's own settings from the environment (servicekit adds the shared ones)."""
    load_environment()
    return {
        "JWT_KEYS_DIR": env("JWT_KEYS_DIR", str(var_dir() / "keys")),
        "JWT_PRIVATE_KEY_FILE": env("JWT_PRIVATE_KEY_FILE"),
        "JWT_ACCESS_TTL": env_int("JWT_ACCESS_TTL", 900),
        "JWT_REFRESH_TTL": env_int("JWT_REFRESH_TTL", 7 * 24 * 3600),
        # The image API's tokens (seed 003 had tokens that never expired).
        "API_TOKEN_TTL": env_int("API_TOKEN_TTL", 30 * 24 * 3600),
        "API_TOKENS_PER_USER": env_int("API_TOKENS_PER_USER", 10),
        # Failed attempts, in the limits-string syntax; "off" disables one.
        "LOGIN_RATE_LIMIT_USERNAME": env("LOGIN_RATE_LIMIT_USERNAME", "10/15 minutes"),
        "LOGIN_RATE_LIMIT_ADDRESS": env("LOGIN_RATE_LIMIT_ADDRESS", "100/15 minutes"),
        "PASSWORD_RESET_RATE_LIMIT_USERNAME": env("PASSWORD_RESET_RATE_LIMIT_USERNAME", "5/hour"),
        "PASSWORD_RESET_RATE_LIMIT_ADDRESS": env("PASSWORD_RESET_RATE_LIMIT_ADDRESS", "50/hour"),
        "PASSWORD_RESET_TTL": env_int("PASSWORD_RESET_TTL", 3600),
        "SMTP_URL": env("SMTP_URL"),
        "SMTP_TIMEOUT": env_float("SMTP_TIMEOUT", 10.0),
        "SMTP_CA_FILE": env("SMTP_CA_FILE"),
        "MAIL_FROM": env("MAIL_FROM", "Flotilla <no-reply@localhost>"),
        "MAIL_OUTBOX_DIR": env("MAIL_OUTBOX_DIR", str(var_dir() / "outbox")),
        # Profile pictures are kept by media_service's internal file store.
        "MEDIA_SERVICE_URL": service_url("media"),
        "MEDIA_READ_TIMEOUT": env_float("MEDIA_READ_TIMEOUT", 10.0),
        "PROFILE_PICTURE_MAX_BYTES": env_int("PROFILE_PICTURE_MAX_BYTES", 5 * MIB),
        # RFC 9106's second recommended option: 3 passes over 64 MiB, 4 lanes.
        "PASSWORD_HASH_TIME_COST": env_int("PASSWORD_HASH_TIME_COST", 3),
        "PASSWORD_HASH_MEMORY_KIB": env_int("PASSWORD_HASH_MEMORY_KIB", 64 * 1024),
        "PASSWORD_HASH_PARALLELISM": env_int("PASSWORD_HASH_PARALLELISM", 4),
        # The user lifecycle stream (outbox.py, relay.py): name, retention, relay pause.
        "USER_EVENTS_STREAM": user_stream(),
        "USER_EVENTS_RETENTION": env_int("USER_EVENTS_RETENTION", 7 * 24 * 3600),
        "USER_EVENTS_RELAY_INTERVAL": env_float("USER_EVENTS_RELAY_INTERVAL", 1.0),
    }


def create_app(
    config: Mapping[str, Any] | None = None, *, keys: KeyResolver | None = None
) -> Flask:
    """The auth_service app. It loads (or creates) its signing keys; it never touches the DB.

    Its own tokens are verified with its own keys; `keys`, when given (tests), are
    accepted in addition, never instead.
    """
    merged = {**settings(), **(config or {})}
    keyring = load_keyring(merged)
    # The key object, not its PEM: PyJWT would parse (and check) a PEM at every signature.
    merged["JWT_PRIVATE_KEY"] = keyring.signing_key.private_key
    resolver = ChainedKeys(keyring, keys) if keys is not None else keyring
    # Redis holds the revocation marks the refresh route honours, when there is one.
    uses_redis = bool(merged["REDIS_URL"] if "REDIS_URL" in merged else env("REDIS_URL"))
    app = create_service_app(
        NAME, __name__, db, blueprints, config=merged, keys=resolver, uses_redis=uses_redis
    )
    app.config["JWT_ENCODE_ISSUER"] = app.config["JWT_ISSUER"]
    app.config["JWT_ENCODE_AUDIENCE"] = app.config["JWT_AUDIENCE"]
    app.config["JWT_ENCODE_NBF"] = False
    app.extensions[KEYRING] = keyring
    _check_rate_limits(app.config)
    StreamSettings.from_config(app.config)  # a bad stream setting stops the start
    init_passwords(app)
    init_mail(app)
    init_pictures(app)
    register_domain_errors(app)
    register_commands(app)
    return app


def _check_rate_limits(config: Mapping[str, Any]) -> None:
    """A mistyped limit fails at start, not at the first login."""
    for name in RATE_LIMIT_SETTINGS:
        try:
            parse_limit(config[name])
        except ValueError as exc:
            raise RuntimeError(f"{name}: {exc}") from exc
