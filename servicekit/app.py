"""`create_app`: the one factory every service is built from (DESIGN.md §3)."""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import flask_smorest
from flask import Flask, Request, current_app
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from marshmallow import INCLUDE, Schema, fields
from redis import Redis
from sqlalchemy import text
from webargs import core
from webargs.flaskparser import FlaskParser
from werkzeug.datastructures import CombinedMultiDict

from servicekit.bodies import BoundedJSONProvider, loads_json
from servicekit.body import ClientBodyErrors
from servicekit.config import service_config
from servicekit.errors import register_error_handlers
from servicekit.identity import init_identity
from servicekit.keys import KeyResolver
from servicekit.observability import configure_logging, init_health, init_request_tracking
from servicekit.redis_connection import redis_from_url
from servicekit.settings import init_settings, load_settings


class ArgumentsParser(FlaskParser):
    """Invalid input is a 400 across the suite (the seeds' status), not webargs' 422.
    JSON bodies go through servicekit.bodies' bounded parser. Adds the `multipart`
    location: a multipart form's files and fields, one schema."""

    DEFAULT_VALIDATION_STATUS = 400
    __location_map__ = {**FlaskParser.__location_map__, "multipart": "load_multipart"}

    def _raw_load_json(self, req: Request) -> Any:
        if not core.is_json(req.mimetype):
            return core.missing
        raw = req.get_data(cache=True)
        return loads_json(raw) if raw.strip() else core.missing

    def load_multipart(self, req: Request, schema: Schema) -> Any:
        return self._makeproxy(CombinedMultiDict([req.files, req.form]), schema)


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = ArgumentsParser()
    # flask-smorest parses `page`/`page_size` with a parser of its own (422 by default).
    PAGINATION_ARGUMENTS_PARSER = ArgumentsParser()
    # `json_or_form` bodies are documented as JSON (forms with the same keys work too).
    DEFAULT_LOCATION_CONTENT_TYPE_MAPPING = {
        **flask_smorest.Blueprint.DEFAULT_LOCATION_CONTENT_TYPE_MAPPING,
        "multipart": "multipart/form-data",
        "json_or_form": "application/json",
    }


class ErrorSchema(Schema):
    """The suite's error body, as servicekit.errors writes it. Loose on purpose: a few
    routes answer with the body their seed document shows instead."""

    class Meta:
        unknown = INCLUDE

    error = fields.Raw(metadata={"description": "what went wrong"})
    code = fields.String(metadata={"description": "a stable machine-readable code"})
    errors = fields.Dict(keys=fields.String(), metadata={"description": "problems by field"})


class Api(flask_smorest.Api):
    ERROR_SCHEMA = ErrorSchema


def create_app(
    name: str,
    package: str,
    db: SQLAlchemy,
    blueprints: Sequence[flask_smorest.Blueprint] = (),
    *,
    settings: type[Any] | None = None,
    config: Mapping[str, Any] | None = None,
    keys: KeyResolver | None = None,
    uses_redis: bool = False,
) -> Flask:
    """A service app: config, settings, database, migrations, OpenAPI, tokens, errors, health.

    `settings` is the service's settings class (servicekit.settings); it is loaded from
    `config` (keyed by variable name) and the environment, and checked, before anything
    else: a bad value stops the start with a message naming the variable. Its optional
    `flask_config()` adds the Flask config it implies (a body limit, say).
    """
    app = Flask(package)
    app.json = BoundedJSONProvider(app)
    app.json.sort_keys = False
    app.config.update(service_config(name))
    app.config.update(_openapi_config(package))
    if settings is not None:
        loaded = load_settings(settings, config)
        init_settings(app, loaded)
        app.config.update(getattr(loaded, "flask_config", dict)())
    app.config.update(config or {})
    configure_logging(app.config["LOG_LEVEL"])
    app.url_map.strict_slashes = False

    _ensure_sqlite_directory(app.config["SQLALCHEMY_DATABASE_URI"])
    db.init_app(app)
    Migrate(app, db, directory=str(_package_dir(package) / "migrations"))

    api = Api(app)
    api.spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    )
    for blueprint in blueprints:
        api.register_blueprint(blueprint)
    app.extensions["servicekit.api"] = api

    register_error_handlers(app)
    app.wsgi_app = ClientBodyErrors(app.wsgi_app)  # type: ignore[method-assign]
    init_identity(app, keys)
    init_request_tracking(app, name)
    checks: dict[str, Callable[[], object]] = {"database": lambda: _ping_database(db)}
    if uses_redis:
        checks["redis"] = lambda: redis_client().ping()
    init_health(app, name, checks)
    return app


def _package_dir(package: str) -> Path:
    return Path(str(importlib.import_module(package).__file__)).parent


def _openapi_config(package: str) -> dict[str, Any]:
    return {
        "API_TITLE": package,
        "API_VERSION": "1.0",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/",
        "OPENAPI_JSON_PATH": "openapi.json",
    }


def _ensure_sqlite_directory(url: str) -> None:
    prefix = "sqlite:///"
    if url.startswith(prefix) and url != "sqlite:///:memory:":
        Path(url[len(prefix) :]).parent.mkdir(parents=True, exist_ok=True)


def _ping_database(db: SQLAlchemy) -> None:
    with db.engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def redis_client() -> Redis:
    """This app's Redis connection (pooled), from `REDIS_URL` (plain or Sentinel)."""
    client = current_app.extensions.get("servicekit.redis")
    if client is None:
        url = current_app.config.get("REDIS_URL")
        if not url:
            raise RuntimeError("REDIS_URL is not configured")
        client = redis_from_url(url, socket_timeout=2, socket_connect_timeout=2)
        current_app.extensions["servicekit.redis"] = client
    return client


_process_apps: dict[Callable[[], Flask], Flask] = {}
_process_apps_lock = threading.Lock()


def process_app(factory: Callable[[], Flask]) -> Flask:
    """The app of this process, built once by `factory` (a module-level function, from the
    environment): what an RQ job runs in when no app context surrounds it."""
    with _process_apps_lock:
        app = _process_apps.get(factory)
        if app is None:
            app = _process_apps[factory] = factory()
        return app
