"""auth_service: users, passwords and tokens; publishes the token signing keys (JWKS)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from auth_service.api import blueprints, register_domain_errors
from auth_service.cli import register_commands
from auth_service.keys import ChainedKeys, load_keyring
from auth_service.models import db
from auth_service.passwords import init_passwords
from auth_service.tokens import KEYRING
from servicekit import create_app as create_service_app
from servicekit.config import env, env_int, load_environment, var_dir
from servicekit.keys import KeyResolver

NAME = "auth"


def settings() -> dict[str, Any]:
    """auth_service's own settings from the environment (servicekit adds the shared ones)."""
    load_environment()
    return {
        "JWT_KEYS_DIR": env("JWT_KEYS_DIR", str(var_dir() / "keys")),
        "JWT_PRIVATE_KEY_FILE": env("JWT_PRIVATE_KEY_FILE"),
        "JWT_ACCESS_TTL": env_int("JWT_ACCESS_TTL", 900),
        "JWT_REFRESH_TTL": env_int("JWT_REFRESH_TTL", 7 * 24 * 3600),
        # RFC 9106's second recommended option: 3 passes over 64 MiB, 4 lanes.
        "PASSWORD_HASH_TIME_COST": env_int("PASSWORD_HASH_TIME_COST", 3),
        "PASSWORD_HASH_MEMORY_KIB": env_int("PASSWORD_HASH_MEMORY_KIB", 64 * 1024),
        "PASSWORD_HASH_PARALLELISM": env_int("PASSWORD_HASH_PARALLELISM", 4),
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
    merged["JWT_PRIVATE_KEY"] = keyring.signing_key.private_pem
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
    init_passwords(app)
    register_domain_errors(app)
    register_commands(app)
    return app
