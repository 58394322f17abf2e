"""auth_service: users, passwords and tokens; publishes the token signing keys (JWKS)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from auth_service.api import blueprints
from auth_service.cli import register_commands
from auth_service.context import AuthContext, init_context
from auth_service.keys import ChainedKeys, KeyRing, load_keyring
from auth_service.mail import Mailer
from auth_service.models import db
from auth_service.passwords import PasswordHashing
from auth_service.pictures import media_picture_store
from auth_service.settings import AuthSettings
from auth_service.tokens import OwnServiceToken, TokenIssuer
from servicekit import create_app as create_service_app
from servicekit.app import redis_client
from servicekit.config import redis_url
from servicekit.keys import KeyResolver
from servicekit.settings import app_settings, load_settings

NAME = "auth"


def create_app(
    config: Mapping[str, Any] | None = None, *, keys: KeyResolver | None = None
) -> Flask:
    """The auth_service app. It loads (or creates) its signing keys; it never touches the DB.

    Its own tokens are verified with its own keys; `keys`, when given (tests), are
    accepted in addition, never instead.
    """
    # The key ring verifies the app's tokens, so it is loaded before the app is built.
    keyring = load_keyring(load_settings(AuthSettings, config))
    verification_keys = ChainedKeys(keyring, keys) if keys is not None else keyring
    app = create_service_app(
        NAME,
        __name__,
        db,
        blueprints,
        settings=AuthSettings,
        config=config,
        keys=verification_keys,
        uses_redis=bool(_redis_url(config)),
    )
    _configure_signing(app, keyring)
    with app.app_context():
        init_context(app, _build_context(app, keyring, verification_keys))
    register_commands(app)
    return app


def _redis_url(config: Mapping[str, Any] | None) -> str | None:
    """Redis holds the revocation marks the refresh route honours, when there is one."""
    if config is not None and "REDIS_URL" in config:
        return config["REDIS_URL"]  # type: ignore[no-any-return]
    return redis_url()


def _configure_signing(app: Flask, keyring: KeyRing) -> None:
    """flask-jwt-extended signs with the key ring's signing key, for this issuer."""
    # The key object, not its PEM: PyJWT would parse (and check) a PEM at every signature.
    app.config["JWT_PRIVATE_KEY"] = keyring.signing_key.private_key
    app.config["JWT_ENCODE_ISSUER"] = app.config["JWT_ISSUER"]
    app.config["JWT_ENCODE_AUDIENCE"] = app.config["JWT_AUDIENCE"]
    app.config["JWT_ENCODE_NBF"] = False


def _build_context(app: Flask, keyring: KeyRing, verification_keys: KeyResolver) -> AuthContext:
    """The settings and the objects built once from them (in the app's context)."""
    settings = app_settings(AuthSettings)
    config = app.config
    tokens = TokenIssuer(
        keyring,
        verification_keys,
        settings,
        issuer=config["JWT_ISSUER"],
        audience=config["JWT_AUDIENCE"],
        leeway=int(config["JWT_LEEWAY"]),
    )
    secret = config.get("SERVICE_SECRET")
    return AuthContext(
        settings=settings,
        tokens=tokens,
        passwords=PasswordHashing.from_settings(settings),
        pictures=media_picture_store(settings, OwnServiceToken(tokens, config["SERVICE_NAME"])),
        mailer=Mailer.from_settings(settings),
        shared_redis=redis_client() if config.get("REDIS_URL") else None,
        service_secret=str(secret) if secret else None,
    )
