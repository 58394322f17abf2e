"""Configuration from the environment (and an optional `.env`), one place for every service.

Secrets may come from files (Kubernetes and compose secrets are files): for a secret
variable `X`, `X_FILE=/run/secrets/x` means "the value of X is that file's content, its
trailing newline removed". Which variables are secrets is decided here, once
(`is_secret_variable`): `SERVICE_SECRET`, `ADMIN_PASSWORD`, `REDIS_URL`,
`MEDIA_URL_SECRET`, `SMTP_URL`, every `<NAME>_DATABASE_URL`, and every typed setting
declared `secret=True` (servicekit.settings asks with `env(name, secret=True)`). Any other
`*_FILE` variable keeps its own meaning: `JWT_PRIVATE_KEY_FILE` names auth_service's key
file (a path, not the key given as a file), `SMTP_CA_FILE` a CA bundle.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dotenv import load_dotenv

from servicekit.redis_connection import redis_url_problem

REPO_ROOT = Path(__file__).resolve().parent.parent

SERVICE_PORTS: dict[str, int] = {
    "gateway": 8000,
    "auth": 8001,
    "events": 8002,
    "tickets": 8003,
    "activity": 8004,
    "media": 8005,
    "datapoints": 8006,
    "scheduler": 8007,
}
UPSTREAMS: tuple[str, ...] = tuple(name for name in SERVICE_PORTS if name != "gateway")
# The gateway's internal listener (/metrics), never exposed to clients.
GATEWAY_METRICS_PORT = 8009

_dotenv_loaded = False

# The Flask config key of the PostgreSQL pool keywords (servicekit.db applies them).
DATABASE_POOL_OPTIONS = "DATABASE_POOL_OPTIONS"

# Variables holding credentials: each may instead be given as `<NAME>_FILE`.
SECRET_VARIABLES = frozenset(
    {"SERVICE_SECRET", "ADMIN_PASSWORD", "REDIS_URL", "MEDIA_URL_SECRET", "SMTP_URL"}
)
SECRET_SUFFIXES = ("_DATABASE_URL",)
FILE_SUFFIX = "_FILE"
# A secret file larger than this is a mistake (a wrong path, a device), not a secret.
SECRET_FILE_MAX_BYTES = 64 * 1024


class ConfigError(RuntimeError):
    """Configuration that cannot be used; the message names the variable at fault."""


def load_environment() -> None:
    """Read `.env` from the repository root once; real environment variables win."""
    global _dotenv_loaded
    if not _dotenv_loaded:
        load_dotenv(REPO_ROOT / ".env", override=False)
        _dotenv_loaded = True


def env(name: str, default: str | None = None, *, secret: bool = False) -> str | None:
    """The value of variable `name` (unset or empty: `default`).

    A secret variable (`secret`, or one `is_secret_variable` names) may come from the file
    `<name>_FILE` names instead; setting both is an error, and so is a file that cannot be
    read or is empty. Errors name the variables and the path, never a value.
    """
    value = os.environ.get(name) or None
    if secret or is_secret_variable(name):
        from_file = _secret_from_file(name, given_directly=value is not None)
        if from_file is not None:
            return from_file
    return value if value is not None else default


def is_secret_variable(name: str) -> bool:
    """Whether `name` carries a credential (and may therefore be read from `<name>_FILE`)."""
    return name in SECRET_VARIABLES or name.endswith(SECRET_SUFFIXES)


def _secret_from_file(name: str, *, given_directly: bool) -> str | None:
    file_variable = name + FILE_SUFFIX
    path = os.environ.get(file_variable) or None
    if path is None:
        return None
    if given_directly:
        raise ConfigError(f"{name} and {file_variable} are both set: set only one of them")
    return read_secret_file(file_variable, Path(path))


def read_secret_file(variable: str, path: Path) -> str:
    """The content of the secret file `path` named by `variable`, trailing newlines removed."""
    try:
        with path.open("rb") as handle:
            content = handle.read(SECRET_FILE_MAX_BYTES + 1)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(f"{variable}={path}: cannot read the file ({reason})") from None
    if len(content) > SECRET_FILE_MAX_BYTES:
        raise ConfigError(
            f"{variable}={path}: the file is larger than {SECRET_FILE_MAX_BYTES} bytes"
        )
    try:
        text = content.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        raise ConfigError(f"{variable}={path}: the file is not UTF-8 text") from None
    if not text:
        raise ConfigError(f"{variable}={path}: the file is empty")
    return text


def env_int(name: str, default: int) -> int:
    raw = env(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc


def env_float(name: str, default: float) -> float:
    raw = env(name)
    if raw is None:
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from exc


def var_dir() -> Path:
    """Where runtime files live (SQLite databases, dev keys, outbox, media)."""
    return Path(env("FLOTILLA_VAR_DIR", str(REPO_ROOT / "var")) or "var")


def service_url(name: str) -> str:
    """Internal base URL of a service: `<NAME>_SERVICE_URL`, else its loopback port."""
    default = f"http://127.0.0.1:{SERVICE_PORTS[name]}"
    return (env(f"{name.upper()}_SERVICE_URL", default) or default).rstrip("/")


def database_url(name: str) -> str:
    default = f"sqlite:///{var_dir() / f'{name}.db'}"
    return env(f"{name.upper()}_DATABASE_URL", default) or default


@dataclass(frozen=True)
class PoolSetting:
    """One knob of a PostgreSQL connection pool: `DB_<...>`, or `<NAME>_DB_<...>` for one
    service, as the SQLAlchemy `create_engine` keyword `keyword`."""

    variable: str
    keyword: str
    default: int
    minimum: int


# SQLAlchemy's own defaults (what every service had before these settings existed).
POOL_SETTINGS = (
    PoolSetting("DB_POOL_SIZE", "pool_size", 5, minimum=1),
    PoolSetting("DB_MAX_OVERFLOW", "max_overflow", 10, minimum=0),
    PoolSetting("DB_POOL_RECYCLE", "pool_recycle", 0, minimum=0),  # 0: never recycled
    PoolSetting("DB_POOL_TIMEOUT", "pool_timeout", 30, minimum=1),
)


def database_pool_options(name: str) -> dict[str, Any]:
    """The pool keywords of service `name`'s PostgreSQL engine, every value checked.

    servicekit.db applies them to PostgreSQL engines only: SQLite engines keep
    SQLAlchemy's pooling for SQLite.
    """
    options: dict[str, Any] = {}
    problems: list[str] = []
    for knob in POOL_SETTINGS:
        variable, raw = _pool_variable(name, knob.variable)
        try:
            options[knob.keyword] = _pool_value(knob, raw)
        except ValueError as exc:
            problems.append(f"{variable} {exc}")
    if problems:
        raise ConfigError("invalid database pool settings: " + "; ".join(problems))
    if options["pool_recycle"] == 0:
        options["pool_recycle"] = -1  # SQLAlchemy's "never"
    return options


def _pool_variable(name: str, variable: str) -> tuple[str, str | None]:
    """The service's own `<NAME>_<variable>` when set, else the suite-wide `variable`."""
    own = f"{name.upper()}_{variable}"
    raw = env(own)
    return (own, raw) if raw is not None else (variable, env(variable))


def _pool_value(knob: PoolSetting, raw: str | None) -> int:
    if raw is None:
        return knob.default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ValueError(f"must be an integer, got {raw!r}") from None
    if value < knob.minimum:
        raise ValueError(f"must be at least {knob.minimum}, got {raw!r}")
    return value


def jwt_settings() -> dict[str, Any]:
    """Token settings shared by the issuer (auth_service), every service and the gateway."""
    return {
        "JWT_ISSUER": env("JWT_ISSUER", "flotilla"),
        "JWT_AUDIENCE": env("JWT_AUDIENCE", "flotilla"),
        "JWT_LEEWAY": env_int("JWT_LEEWAY", 30),
        "JWKS_URL": env("JWKS_URL", f"{service_url('auth')}/.well-known/jwks.json"),
    }


def redis_url() -> str | None:
    """`REDIS_URL`, checked: a malformed one stops the start here, naming the variable,
    rather than at the first request that needs Redis."""
    url = env("REDIS_URL")
    problem = redis_url_problem(url) if url else None
    if problem:
        raise ConfigError(f"REDIS_URL {problem}")
    return url


def service_config(name: str) -> dict[str, Any]:
    """The Flask config of a service, from the environment."""
    load_environment()
    return {
        "SERVICE_NAME": name,
        "SQLALCHEMY_DATABASE_URI": database_url(name),
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        DATABASE_POOL_OPTIONS: database_pool_options(name),
        "REDIS_URL": redis_url(),
        "MAX_CONTENT_LENGTH": env_int("MAX_CONTENT_LENGTH", 10 * 1024 * 1024),
        "LOG_LEVEL": env("LOG_LEVEL", "INFO"),
        "SERVICE_SECRET": env("SERVICE_SECRET"),
        **jwt_settings(),
    }
